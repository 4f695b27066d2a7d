// The README's mini-program code (app.js and the page), run as it is in a
// small imitation of the mini-program runtime (App, Page, getApp, a global
// wx, require) against the real service: the example cannot rot.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const { startService, fakeWx, post, eventually, storageKey, repoRoot } = require('./harness.js');

const T = { timeout: 30000 };
let svc;
before(async () => { svc = await startService(); });
after(async () => { if (svc) await svc.stop(); });

// readmeBlock returns the README's one ```js block that contains marker.
function readmeBlock(marker) {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]).filter((b) => b.includes(marker));
  assert.equal(blocks.length, 1, `one README block with ${marker}`);
  return blocks[0];
}

// miniProgram runs app.js and the page in one context, as the mini-program
// runtime would: wx is a global and require resolves the copied client.
function miniProgram(w) {
  let app = null;
  let pageDef = null;
  const sdkSource = fs.readFileSync(path.join(__dirname, '..', 'wxlogin.js'), 'utf8');
  const ctx = vm.createContext({
    wx: w,
    console,
    App(def) { app = def; },
    Page(def) { pageDef = def; },
    getApp() { return app; },
  });
  let sdk = null;
  ctx.require = (p) => {
    assert.match(p, /^(\.\/|\.\.\/\.\.\/)utils\/wxlogin\.js$/);
    if (!sdk) {
      const mod = { exports: {} };
      vm.runInContext(`(function (module, exports) {${sdkSource}\n})`, ctx, { filename: 'utils/wxlogin.js' })(mod, mod.exports);
      sdk = mod.exports;
    }
    return sdk;
  };
  vm.runInContext(`(function () {${readmeBlock('App({')}\n})()`, ctx, { filename: 'app.js' });
  vm.runInContext(`(function () {${readmeBlock('Page({')}\n})()`, ctx, { filename: 'pages/me/me.js' });
  assert.ok(app && pageDef);
  const page = Object.assign({}, pageDef, { data: JSON.parse(JSON.stringify(pageDef.data)) });
  page.setData = (d) => Object.assign(page.data, d);
  return { app, page };
}

test('the README\'s app.js and page log in, load the user, recover a stale session key, add the phone and log out', T, async () => {
  const openid = `readme-${crypto.randomBytes(4).toString('hex')}`;
  const w = fakeWx({ emulatorURL: svc.emulatorURL, openid });
  const relaunched = [];
  w.reLaunch = (o) => relaunched.push(o.url);
  // The README's baseURL is an example; this test's service stands in for it.
  const realRequest = w.request.bind(w);
  w.request = (o) => realRequest(Object.assign({}, o, { url: o.url.replace('https://api.example.com', svc.baseURL) }));
  const key = storageKey('https://api.example.com');

  const { app, page } = miniProgram(w);
  app.onLaunch();
  await eventually(async () => w.getStorageSync(key).access_token, 'the login at launch');

  page.onLoad();
  await eventually(async () => page.data.user, 'the page to load the user');
  assert.equal(page.data.user.openid, openid);
  assert.equal(w.log.logins, 1);

  // Something else on the device called wx.login: the button's legacy data
  // is encrypted under a key the service does not hold.
  await post(svc.emulatorURL + '/emulator/login', { openid });
  const stale = await post(svc.emulatorURL + '/emulator/phone', { openid, phone: '13800000000' });
  page.onPhone({ detail: { encryptedData: stale.body.encrypted_data, iv: stale.body.iv } });
  await eventually(async () => page.data.notice, 'the page to ask again');
  assert.equal(page.data.notice, '请再点一次按钮授权手机号');
  assert.equal(w.log.logins, 2, 'the client logged in again');

  const fresh = await post(svc.emulatorURL + '/emulator/phone', { openid, phone: '13800000000' });
  page.onPhone({ detail: { encryptedData: fresh.body.encrypted_data, iv: fresh.body.iv } });
  await eventually(async () => page.data.user.phone === '13800000000', 'the phone from the legacy data');
  assert.equal(page.data.notice, '');

  const viaCode = await post(svc.emulatorURL + '/emulator/phone', { openid, phone: '13900000000' });
  page.onPhone({ detail: { code: viaCode.body.code } });
  await eventually(async () => page.data.user.phone === '13900000000', 'the phone from the button\'s code');

  page.onPhone({ detail: { errMsg: 'getPhoneNumber:fail user deny' } }); // declined: nothing is sent
  const sent = w.log.requests.length;

  page.onLogout();
  await eventually(async () => relaunched.length === 1, 'the page to go home');
  assert.deepEqual(relaunched, ['/pages/index/index']);
  assert.equal(w.storage.size, 0);
  assert.equal(w.log.requests.length, sent + 1, 'one logout request');
  assert.equal(w.log.requests[sent].status, 204);
});

test('the README\'s page shows "signed in elsewhere" and continues here on a button', T, async () => {
  const openid = `readme2-${crypto.randomBytes(4).toString('hex')}`;
  const w = fakeWx({ emulatorURL: svc.emulatorURL, openid });
  const realRequest = w.request.bind(w);
  let replaced = true;
  w.request = (o) => {
    const url = o.url.replace('https://api.example.com', svc.baseURL);
    // Today's service has no "replaced" reason yet: answer it here, once.
    if (replaced && url.endsWith('/api/v1/me')) {
      replaced = false;
      setImmediate(() => o.success({ statusCode: 401, data: { error: { code: 'unauthenticated', message: 'signed in elsewhere', reason: 'replaced' } }, header: {} }));
      return {};
    }
    return realRequest(Object.assign({}, o, { url }));
  };
  const { app, page } = miniProgram(w);
  app.onLaunch();
  page.onLoad();
  await eventually(async () => page.data.showContinue, 'the page to offer continuing here');
  assert.equal(page.data.notice, '你已在其他设备登录');
  assert.equal(w.log.logins, 1, 'no silent login');

  page.onContinueHere();
  await eventually(async () => page.data.user, 'the user after continuing');
  assert.equal(page.data.user.openid, openid);
  assert.equal(page.data.showContinue, false);
  assert.equal(w.log.logins, 2);
});
