// The mini-program client and access tokens that really expire: the real
// service with APP_TOKEN_TTL=3s (its own service, so the other tests keep
// long-lived tokens).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { createClient } = require('../wxlogin.js');
const { startService, fakeWx, eventually, storageKey } = require('./harness.js');

const T = { timeout: 30000 };
let svc;
before(async () => { svc = await startService({ APP_TOKEN_TTL: '3s' }); });
after(async () => { if (svc) await svc.stop(); });

const ME = '/api/v1/me';
const REFRESH = '/api/v1/auth/refresh';

async function loggedIn(name) {
  const openid = `${name}-${crypto.randomBytes(4).toString('hex')}`;
  const w = fakeWx({ emulatorURL: svc.emulatorURL, openid });
  const client = createClient({ baseURL: svc.baseURL, wx: w });
  await client.login();
  const key = storageKey(svc.baseURL);
  const t = w.getStorageSync(key);
  assert.ok(t.expires_at - Date.now() <= 3000, 'the client took expires_in from the service');
  // Wait (polling, no fixed sleep) until the service refuses the token and
  // the client's own clock says it has expired.
  await eventually(async () => {
    const r = await fetch(svc.baseURL + ME, { headers: { authorization: 'Bearer ' + t.access_token } });
    return r.status === 401 && Date.now() >= t.expires_at;
  }, 'the access token to expire', 15000);
  w.reset();
  return { w, client, key, openid };
}

test('an access token the client knows has expired is refreshed before sending, once for parallel requests', T, async () => {
  const { w, client, openid } = await loggedIn('ahead');
  const results = await Promise.all([1, 2, 3, 4].map(() => client.request({ url: ME })));
  assert.deepEqual(results.map((r) => r.data.openid), Array(4).fill(openid));
  assert.equal(w.sent(REFRESH).length, 1);
  assert.equal(w.sent(ME).filter((r) => r.status === 401).length, 0, 'no request was refused');
  assert.equal(w.log.logins, 0);
});

test('an access token the service says has expired (device clock behind) causes one refresh for parallel 401s', T, async () => {
  const { w, client, key, openid } = await loggedIn('behind');
  // The device's clock thinks the token has hours left.
  const t = w.getStorageSync(key);
  w.setStorageSync(key, Object.assign(t, { expires_at: Date.now() + 3600e3, issued_at: Date.now() }));
  const results = await Promise.all([1, 2, 3, 4].map(() => client.request({ url: ME })));
  assert.deepEqual(results.map((r) => r.data.openid), Array(4).fill(openid));
  assert.equal(w.sent(ME).filter((r) => r.status === 401).length, 4, 'every request saw the 401');
  assert.equal(w.sent(REFRESH).length, 1);
  assert.equal(w.sent(ME).length, 8);
  assert.equal(w.log.logins, 0);
});
