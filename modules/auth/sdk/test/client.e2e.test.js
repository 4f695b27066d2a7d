// The mini-program client against the real service and its WeChat emulator:
// a fake wx whose login calls the emulator's device API and whose request
// uses fetch. One service for the whole file; one openid (user) per test.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { createClient, WxLoginError, SessionKeyStaleError } = require('../wxlogin.js');
const { DEV_APPID, startService, fakeWx, post, storageKey } = require('./harness.js');

let svc;
before(async () => { svc = await startService(); });
after(async () => { if (svc) await svc.stop(); });

// A loop in the client shows up as a failed test, not a hung run.
const T = { timeout: 20000 };

const LOGIN = '/api/v1/auth/login';
const REFRESH = '/api/v1/auth/refresh';
const ME = '/api/v1/me';

function device(name, extra = {}) {
  const openid = `${name}-${crypto.randomBytes(4).toString('hex')}`;
  const w = fakeWx(Object.assign({ emulatorURL: svc.emulatorURL, openid }, extra));
  const client = createClient({ baseURL: svc.baseURL, wx: w });
  return { openid, w, client };
}

function stored(w) {
  return w.getStorageSync(storageKey(svc.baseURL));
}

// spoil replaces the stored tokens' fields, as a token the service no
// longer accepts would look to the client.
function spoil(w, fields) {
  w.setStorageSync(storageKey(svc.baseURL), Object.assign(stored(w), fields));
}

test('login stores the tokens under the service and AppID, and sends code, appid, client and device', T, async () => {
  const { w, client, openid } = device('login');
  const user = await client.login();
  assert.equal(user.openid, openid);
  assert.equal(w.log.logins, 1);

  const [login] = w.sent(LOGIN);
  assert.equal(login.status, 200);
  assert.equal(login.authorization, undefined);
  assert.equal(typeof login.body.code, 'string');
  assert.equal(login.body.appid, DEV_APPID);
  assert.equal(login.body.client, 'miniprogram');
  assert.equal(login.body.device, 'devtools iPhone 15');

  const t = stored(w);
  assert.ok(t.access_token && t.refresh_token, 'tokens are stored');
  assert.ok(t.expires_at > Date.now() && t.refresh_expires_at > t.expires_at);
  assert.deepEqual([...w.storage.keys()], [`wxlogin:${svc.baseURL}#${DEV_APPID}`]);
  assert.equal(client.isLoggedIn(), true);

  const res = await client.request({ url: ME });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.openid, openid);
  assert.match(res.header['content-type'], /json/);
  assert.equal(w.sent(ME)[0].authorization, 'Bearer ' + t.access_token);
});

test('the first request logs in by itself, once for parallel requests', T, async () => {
  const { w, client } = device('auto');
  const results = await Promise.all([1, 2, 3, 4].map(() => client.request({ url: ME })));
  assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200, 200]);
  assert.equal(w.log.logins, 1);
  assert.equal(w.sent(LOGIN).length, 1);
});

test('parallel requests that all see 401 cause exactly one refresh, then all succeed', T, async () => {
  const { w, client, openid } = device('parallel');
  await client.login();
  spoil(w, { access_token: 'no.longer.valid' });
  w.reset();

  const results = await Promise.all([1, 2, 3, 4, 5].map(() => client.request({ url: ME })));
  assert.deepEqual(results.map((r) => r.data.openid), Array(5).fill(openid));
  assert.equal(w.sent(ME).filter((r) => r.status === 401).length, 5, 'every request saw the 401');
  assert.equal(w.sent(REFRESH).length, 1, 'one refresh for all of them');
  assert.equal(w.sent(ME).length, 10, 'each request replayed once');
  assert.equal(w.log.logins, 0);
  assert.notEqual(stored(w).access_token, 'no.longer.valid');
});

test('a failed refresh causes exactly one re-login for every request in flight, then success', T, async () => {
  const { w, client, openid } = device('refreshfail');
  await client.login();
  spoil(w, { access_token: 'no.longer.valid', refresh_token: 'unknown.refresh-token' });
  w.reset();

  const results = await Promise.all([1, 2, 3].map(() => client.request({ url: ME })));
  assert.deepEqual(results.map((r) => r.data.openid), Array(3).fill(openid));
  const [refresh] = w.sent(REFRESH);
  assert.equal(w.sent(REFRESH).length, 1);
  assert.equal(refresh.status, 401);
  assert.equal(w.log.logins, 1, 'one wx.login');
  assert.equal(w.sent(LOGIN).length, 1, 'one login');
  assert.equal(w.sent(ME).length, 6);
});

test('a session revoked by logout-all on another device causes one re-login', T, async () => {
  const a = device('revoked');
  const b = fakeWx({ emulatorURL: svc.emulatorURL, openid: a.openid }); // the same person on a second phone
  const other = createClient({ baseURL: svc.baseURL, wx: b });
  await a.client.login();
  await other.login();
  await other.logoutAll();
  a.w.reset();

  const res = await a.client.request({ url: ME });
  assert.equal(res.data.openid, a.openid);
  assert.equal(a.w.log.logins, 1, 'one wx.login');
  assert.equal(a.w.sent(LOGIN).length, 1);
  // Today's service gives no reason, so the client tries the refresh token
  // first (refused); with reason "revoked" it logs in without trying.
  assert.ok(a.w.sent(REFRESH).length <= 1);
  assert.ok(a.w.sent(REFRESH).every((r) => r.status === 401));
});

test('a session logged out by another client on the same storage causes one re-login', T, async () => {
  const a = device('shared');
  const twin = createClient({ baseURL: svc.baseURL, wx: a.w }); // e.g. a second instance in the same mini program
  await a.client.login();
  const old = stored(a.w).access_token;
  await twin.logout();
  assert.equal(stored(a.w), '');
  a.w.reset();

  const res = await a.client.request({ url: ME });
  assert.equal(res.statusCode, 200);
  assert.equal(a.w.log.logins, 1);
  assert.notEqual(stored(a.w).access_token, old);
});

test('a revoked access token the client still holds causes one refresh attempt and one re-login', T, async () => {
  const { w, client, openid } = device('tokenrevoked');
  await client.login();
  // Another holder of this very session ends it.
  const r = await post(svc.baseURL + '/api/v1/auth/logout', undefined, { authorization: 'Bearer ' + stored(w).access_token });
  assert.equal(r.status, 204);
  w.reset();

  const results = await Promise.all([1, 2].map(() => client.request({ url: ME })));
  assert.deepEqual(results.map((x) => x.data.openid), [openid, openid]);
  assert.equal(w.log.logins, 1);
  assert.ok(w.sent(REFRESH).length <= 1);
});

test('a second 401 after the replay surfaces as an error instead of looping', T, async () => {
  // A proxy that spoils the Authorization header of one route: every try
  // of that route is refused, however fresh the token.
  const openid = `loop-${crypto.randomBytes(4).toString('hex')}`;
  const w = fakeWx({
    emulatorURL: svc.emulatorURL,
    openid,
    intercept(call) {
      if (new URL(call.url).pathname === '/api/v1/example/greeting') call.header.Authorization = 'Bearer spoiled.by.proxy';
      return call;
    },
  });
  const client = createClient({ baseURL: svc.baseURL, wx: w });
  await client.login();
  w.reset();

  await assert.rejects(client.request({ url: '/api/v1/example/greeting' }), (err) => {
    assert.ok(err instanceof WxLoginError);
    assert.equal(err.statusCode, 401);
    assert.equal(err.code, 'unauthenticated');
    return true;
  });
  assert.equal(w.sent('/api/v1/example/greeting').length, 2, 'sent once, replayed once');
  assert.equal(w.sent(REFRESH).length, 1);
  assert.equal(w.log.logins, 0);
  // The client still works for the other routes.
  assert.equal((await client.request({ url: ME })).statusCode, 200);
});

test('stale session key: legacy phone data from before a new wx.login → wx.login + login, typed error, then the new data works', T, async () => {
  const { w, client, openid } = device('stale');
  await client.login();
  const before = await post(svc.emulatorURL + '/emulator/phone', { openid, phone: '13800000000' });
  assert.equal(before.status, 200);
  // The device logs in again (new session key at the service); the data
  // produced before no longer decrypts.
  await client.login();
  const tokenBefore = stored(w).access_token;
  w.reset();

  await assert.rejects(
    client.request({ url: '/api/v1/me/phone', method: 'POST', data: { encrypted_data: before.body.encrypted_data, iv: before.body.iv } }),
    (err) => {
      assert.ok(err instanceof SessionKeyStaleError, 'a SessionKeyStaleError');
      assert.ok(err instanceof WxLoginError, 'also a WxLoginError');
      assert.equal(err.code, 'session_key_stale');
      assert.equal(err.statusCode, 409);
      assert.equal(err.name, 'SessionKeyStaleError');
      return true;
    },
  );
  assert.equal(w.log.logins, 1, 'one wx.login');
  assert.equal(w.sent(LOGIN).length, 1, 'one login');
  assert.equal(w.sent('/api/v1/me/phone').length, 1, 'the stale data is not resent');
  assert.notEqual(stored(w).access_token, tokenBefore);
  // The session the client replaced is ended.
  const old = await fetch(svc.baseURL + ME, { headers: { authorization: 'Bearer ' + tokenBefore } });
  assert.equal(old.status, 401);

  // The page asks again: the button produces data under the new key.
  const again = await post(svc.emulatorURL + '/emulator/phone', { openid, phone: '13800000000' });
  const res = await client.request({ url: '/api/v1/me/phone', method: 'POST', data: { encrypted_data: again.body.encrypted_data, iv: again.body.iv } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.phone, '13800000000');
});

test('stale session key: a wx.login behind the client\'s back is recovered the same way', T, async () => {
  const { w, client, openid } = device('stale2');
  await client.login();
  // Something else on the device calls wx.login: the emulator (WeChat)
  // now holds a new key the service does not know.
  await post(svc.emulatorURL + '/emulator/login', { openid });
  const data = await post(svc.emulatorURL + '/emulator/phone', { openid, phone: '13900000000' });
  w.reset();

  const send = (d) => client.request({ url: '/api/v1/me/phone', method: 'POST', data: { encrypted_data: d.body.encrypted_data, iv: d.body.iv } });
  await assert.rejects(send(data), SessionKeyStaleError);
  assert.equal(w.log.logins, 1);
  const again = await post(svc.emulatorURL + '/emulator/phone', { openid, phone: '13900000000' });
  assert.equal((await send(again)).data.phone, '13900000000');
});

test('parallel stale answers share one recovery login', T, async () => {
  const { w, client, openid } = device('stale3');
  await client.login();
  await post(svc.emulatorURL + '/emulator/login', { openid });
  const d = await post(svc.emulatorURL + '/emulator/phone', { openid, phone: '13700000000' });
  w.reset();
  const send = () => client.request({ url: '/api/v1/me/phone', method: 'POST', data: { encrypted_data: d.body.encrypted_data, iv: d.body.iv } });
  const results = await Promise.allSettled([send(), send(), send()]);
  assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof SessionKeyStaleError));
  assert.equal(w.log.logins, 1);
});

test('logout ends the session, clears storage, and requests wait for login()', T, async () => {
  const { w, client } = device('logout');
  await client.login();
  const t = stored(w);
  await client.logout();
  assert.equal(w.storage.size, 0, 'nothing left in storage');
  assert.equal(client.isLoggedIn(), false);
  const [sent] = w.sent('/api/v1/auth/logout');
  assert.equal(sent.status, 204);
  const me = await fetch(svc.baseURL + ME, { headers: { authorization: 'Bearer ' + t.access_token } });
  assert.equal(me.status, 401, 'the access token no longer works');
  const refresh = await post(svc.baseURL + REFRESH, { refresh_token: t.refresh_token });
  assert.equal(refresh.status, 401, 'nor the refresh token');

  const before = w.log.requests.length;
  await assert.rejects(client.request({ url: ME }), (err) => err.code === 'not_logged_in');
  assert.equal(w.log.requests.length, before, 'no request went out');
  assert.equal(w.log.logins, 1, 'no silent login');

  await client.login();
  assert.equal((await client.request({ url: ME })).statusCode, 200);
});

test('logout with an expired access token refreshes once to end the session', T, async () => {
  const { w, client } = device('logoutexpired');
  await client.login();
  const t = stored(w);
  spoil(w, { access_token: 'no.longer.valid' });
  w.reset();
  await client.logout();
  assert.deepEqual(w.log.requests.map((r) => `${r.path} ${r.status}`), [
    '/api/v1/auth/logout 401', `${REFRESH} 200`, '/api/v1/auth/logout 204',
  ]);
  const refresh = await post(svc.baseURL + REFRESH, { refresh_token: t.refresh_token });
  assert.equal(refresh.status, 401);
});

test('errors carry the service\'s status, code and message', T, async () => {
  const { client } = device('errors');
  await client.login();
  await assert.rejects(client.request({ url: ME, method: 'PATCH', data: { nickname: '' } }), (err) => {
    assert.ok(err instanceof WxLoginError);
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'invalid_nickname');
    assert.ok(err.message.length > 0);
    assert.equal(err.reason, '');
    return true;
  });
  await assert.rejects(client.request({ url: '/api/v1/nowhere' }), (err) => err.statusCode === 404 && err.code === 'not_found');
  const res = await client.request({ url: ME, method: 'PATCH', data: { nickname: '小明' } });
  assert.equal(res.data.nickname, '小明');
});

test('the token goes only to baseURL', T, async () => {
  const { w, client } = device('url');
  await assert.rejects(client.request({ url: 'https://evil.example.com/api/v1/me' }), (err) => err.code === 'invalid_url');
  await assert.rejects(client.request({ url: svc.baseURL + '.evil.example.com/x' }), (err) => err.code === 'invalid_url');
  await assert.rejects(client.request({ url: '//evil.example.com/x' }), (err) => err.code === 'invalid_url');
  assert.equal(w.log.requests.length, 0);
  assert.equal((await client.request({ url: svc.baseURL + ME })).statusCode, 200);
});

test('the service serves this very file at /sdk/wxlogin.js', T, async () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const r = await fetch(svc.baseURL + '/sdk/wxlogin.js');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/javascript; charset=utf-8');
  assert.equal(await r.text(), fs.readFileSync(path.join(__dirname, '..', 'wxlogin.js'), 'utf8'));
});

test('sessions() lists this device\'s session as current', T, async (t) => {
  const { client } = device('sessions');
  await client.login();
  let sessions;
  try {
    sessions = await client.sessions();
  } catch (err) {
    if (err.statusCode === 404 && err.code === 'not_found') {
      // GET /api/v1/auth/sessions arrives with the sessions work on another
      // branch; this test runs for real once it is merged. Not a pass.
      t.skip('GET /api/v1/auth/sessions is not on this service yet (404)');
      return;
    }
    throw err;
  }
  assert.ok(Array.isArray(sessions));
  const current = sessions.filter((s) => s.current);
  assert.equal(current.length, 1);
  const s = current[0];
  for (const k of ['id', 'client', 'device', 'appid', 'created_at', 'last_seen_at']) {
    assert.ok(k in s, `session has ${k}`);
  }
  assert.equal(s.client, 'miniprogram');
  assert.equal(s.device, 'devtools iPhone 15');
  assert.equal(s.appid, DEV_APPID);
});
