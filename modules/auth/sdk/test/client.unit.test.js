// Unit tests of the mini-program client against a scripted fake service:
// the answers the real service cannot give yet (reasons on 401, banned
// users) and the client's own edges. The real service is in
// client.e2e.test.js and expiry.e2e.test.js.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const { createClient, WxLoginError, SessionKeyStaleError, fromUni, fromTaro } = require('../wxlogin.js');

const T = { timeout: 10000 };
const BASE = 'https://api.example.com';
const SOURCE = fs.readFileSync(path.join(__dirname, '..', 'wxlogin.js'), 'utf8');

const unauthenticated = (reason) => ({ statusCode: 401, data: { error: { code: 'unauthenticated', message: 'no', reason } } });
const tokens = (n, extra) => ({ statusCode: 200, data: Object.assign({ access_token: 'at' + n, token_type: 'Bearer', expires_in: 7200, refresh_token: 'rt' + n, refresh_expires_in: 2592000 }, extra) });

// scripted is a fake wx whose requests are answered by routes[path](call),
// asynchronously like the real one. By default login and refresh succeed
// with new tokens and /me answers 200 for the newest access token.
function scripted(routes = {}) {
  let n = 0;
  let newest = '';
  const log = { logins: 0, requests: [] };
  const storage = new Map();
  const defaults = {
    '/api/v1/auth/login': () => { n++; newest = 'at' + n; return tokens(n, { user: { id: 1 } }); },
    '/api/v1/auth/refresh': () => { n++; newest = 'at' + n; return tokens(n); },
    '/api/v1/auth/logout': () => ({ statusCode: 204, data: '' }),
    '/api/v1/me': (c) => (c.header.Authorization === 'Bearer ' + newest ? { statusCode: 200, data: { id: 1 } } : unauthenticated()),
  };
  const all = Object.assign(defaults, routes);
  const w = {
    log,
    storage,
    count: (p) => log.requests.filter((r) => r.path === p).length,
    login(o) {
      log.logins++;
      setImmediate(() => o.success({ code: 'code' + log.logins, errMsg: 'login:ok' }));
    },
    request(o) {
      const p = new URL(o.url).pathname;
      const call = { path: p, method: o.method, data: o.data, header: o.header };
      log.requests.push(call);
      setImmediate(async () => {
        const h = all[p];
        if (!h) return o.success({ statusCode: 404, data: { error: { code: 'not_found', message: 'no' } }, header: {} });
        const r = await h(call); // a route may answer later
        if (r === 'network') return o.fail({ errMsg: 'request:fail timeout' });
        o.success(Object.assign({ header: { 'content-type': 'application/json' } }, r));
      });
    },
    getStorageSync: (k) => (storage.has(k) ? JSON.parse(storage.get(k)) : ''),
    setStorageSync: (k, v) => storage.set(k, JSON.stringify(v)),
    removeStorageSync: (k) => storage.delete(k),
    getAccountInfoSync: () => ({ miniProgram: { appId: 'wxunit' } }),
  };
  return w;
}

function client(w, extra) {
  return createClient(Object.assign({ baseURL: BASE, wx: w }, extra));
}

for (const reason of ['user_banned', 'user_deleted', 'replaced', 'session_limit']) {
  test(`401 "${reason}" stops the client: no refresh, no login, no more requests until login()`, T, async () => {
    let answer = unauthenticated(reason);
    const w = scripted({ '/api/v1/me': () => answer });
    const c = client(w);
    await c.login();
    w.log.requests.length = 0;

    for (let i = 0; i < 3; i++) {
      await assert.rejects(c.request({ url: '/api/v1/me' }), (err) => {
        assert.ok(err instanceof WxLoginError);
        assert.equal(err.statusCode, 401);
        assert.equal(err.code, 'unauthenticated');
        assert.equal(err.reason, reason);
        return true;
      });
    }
    assert.equal(w.count('/api/v1/me'), 1, 'only the first request went out');
    assert.equal(w.count('/api/v1/auth/refresh'), 0);
    assert.equal(w.log.logins, 1, 'no login after the stop');
    assert.equal(w.storage.size, 0, 'the tokens are forgotten');
    assert.equal(c.isLoggedIn(), false);

    // A person's action resumes.
    answer = { statusCode: 200, data: { id: 1 } };
    await c.login();
    assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
  });
}

test('a 401 "replaced" for tokens the client has already replaced is replayed, not a stop', T, async () => {
  let release;
  const released = new Promise((r) => { release = r; });
  const w = scripted({
    '/api/v1/slow': async (call) => {
      if (call.header.Authorization === 'Bearer at1') {
        await released; // answers after the next login
        return unauthenticated('replaced');
      }
      return { statusCode: 200, data: { ok: true } };
    },
  });
  const c = client(w);
  await c.login();
  const slow = c.request({ url: '/api/v1/slow' });
  await new Promise((r) => setImmediate(r));
  const relogin = c.login(); // in flight when the old session's 401 arrives
  release();
  assert.equal((await slow).statusCode, 200);
  await relogin;
  assert.equal(w.count('/api/v1/slow'), 2);
  assert.equal(c.isLoggedIn(), true);
  assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
});

test('403 user_banned on login stops the client after one wx.login', T, async () => {
  const w = scripted({ '/api/v1/auth/login': () => ({ statusCode: 403, data: { error: { code: 'user_banned', message: 'banned' } } }) });
  const c = client(w);
  const results = await Promise.allSettled([1, 2, 3].map(() => c.request({ url: '/api/v1/me' })));
  assert.ok(results.every((r) => r.status === 'rejected' && r.reason.code === 'user_banned' && r.reason.statusCode === 403));
  await assert.rejects(c.request({ url: '/api/v1/me' }), (err) => err.code === 'user_banned');
  await assert.rejects(c.ensureLogin(), (err) => err.code === 'user_banned');
  assert.equal(w.log.logins, 1);
  assert.equal(w.count('/api/v1/auth/login'), 1);
  assert.equal(w.count('/api/v1/me'), 0);
});

test('a refused refresh followed by a banned login stops after one login', T, async () => {
  let banned = false;
  const w = scripted({
    '/api/v1/auth/refresh': () => ({ statusCode: 401, data: { error: { code: 'refresh_token_reused', message: 'no' } } }),
    '/api/v1/auth/login': () => (banned
      ? { statusCode: 403, data: { error: { code: 'user_banned', message: 'banned' } } }
      : tokens(1, { user: {} })),
    '/api/v1/me': () => unauthenticated('expired'),
  });
  const c = client(w);
  await c.login();
  banned = true;
  const results = await Promise.allSettled([1, 2].map(() => c.request({ url: '/api/v1/me' })));
  assert.ok(results.every((r) => r.status === 'rejected' && r.reason.code === 'user_banned'));
  assert.equal(w.count('/api/v1/auth/refresh'), 1);
  assert.equal(w.log.logins, 2, 'the first login and one re-login');
  await assert.rejects(c.request({ url: '/api/v1/me' }), (err) => err.code === 'user_banned');
  assert.equal(w.log.logins, 2);
});

test('401 "logged_out" and "revoked" log in again without a doomed refresh', T, async () => {
  for (const reason of ['logged_out', 'revoked']) {
    let newest = '';
    const w = scripted({
      '/api/v1/auth/login': () => { newest = 'at' + (w.log.logins); return tokens(w.log.logins, { user: {} }); },
      '/api/v1/me': (call) => (call.header.Authorization === 'Bearer ' + newest && w.log.logins > 1 ? { statusCode: 200, data: {} } : unauthenticated(reason)),
    });
    const c = client(w);
    await c.login();
    const results = await Promise.all([1, 2, 3].map(() => c.request({ url: '/api/v1/me' })));
    assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200]);
    assert.equal(w.count('/api/v1/auth/refresh'), 0, reason);
    assert.equal(w.log.logins, 2, reason);
  }
});

test('401 "expired" refreshes once for parallel requests', T, async () => {
  const w = scripted();
  const c = client(w);
  await c.login();
  w.setStorageSync(`wxlogin:${BASE}#wxunit`, Object.assign(w.getStorageSync(`wxlogin:${BASE}#wxunit`), { access_token: 'old' }));
  const results = await Promise.all([1, 2, 3, 4].map(() => c.request({ url: '/api/v1/me' })));
  assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200, 200]);
  assert.equal(w.count('/api/v1/auth/refresh'), 1);
  assert.equal(w.log.logins, 1);
});

test('a refresh that fails with 503 or no answer is an error, not a login; the tokens are kept', T, async () => {
  for (const answer of [{ statusCode: 503, data: { error: { code: 'unavailable', message: 'later' } } }, 'network']) {
    const w = scripted({ '/api/v1/auth/refresh': () => answer, '/api/v1/me': () => unauthenticated('expired') });
    const c = client(w);
    await c.login();
    const results = await Promise.allSettled([1, 2].map(() => c.request({ url: '/api/v1/me' })));
    const code = answer === 'network' ? 'network_error' : 'unavailable';
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason.code === code), code);
    assert.equal(w.count('/api/v1/auth/refresh'), 1);
    assert.equal(w.log.logins, 1);
    assert.equal(c.isLoggedIn(), true);
  }
});

test('the token is refreshed ahead of expiry, once for parallel requests', T, async () => {
  const w = scripted({ '/api/v1/auth/login': () => tokens(0, { expires_in: 1, user: {} }) });
  const c = client(w);
  await c.login();
  const key = `wxlogin:${BASE}#wxunit`;
  const t = w.getStorageSync(key);
  w.setStorageSync(key, Object.assign(t, { issued_at: t.issued_at - 5000, expires_at: t.expires_at - 5000 }));
  const results = await Promise.all([1, 2, 3].map(() => c.request({ url: '/api/v1/me' })));
  assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200]);
  assert.equal(w.count('/api/v1/auth/refresh'), 1);
  assert.equal(w.count('/api/v1/me'), 3, 'no request saw a 401');
});

test('an expired refresh token means a login, not a refresh', T, async () => {
  const w = scripted();
  const c = client(w);
  await c.login();
  const key = `wxlogin:${BASE}#wxunit`;
  w.setStorageSync(key, Object.assign(w.getStorageSync(key), { access_token: 'old', refresh_expires_at: Date.now() - 1 }));
  assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
  assert.equal(w.count('/api/v1/auth/refresh'), 0);
  assert.equal(w.log.logins, 2);
});

test('409 session_key_stale: one login, then a SessionKeyStaleError with the service\'s message', T, async () => {
  const w = scripted({ '/api/v1/me/userinfo': () => ({ statusCode: 409, data: { error: { code: 'session_key_stale', message: 'call wx.login' } } }) });
  const c = client(w);
  await c.login();
  await assert.rejects(c.request({ url: '/api/v1/me/userinfo', method: 'POST', data: {} }), (err) => {
    assert.ok(err instanceof SessionKeyStaleError);
    assert.ok(err instanceof WxLoginError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'SessionKeyStaleError');
    assert.equal(err.message, 'call wx.login');
    assert.equal(err.statusCode, 409);
    assert.ok(err.stack.includes('SessionKeyStaleError'));
    return true;
  });
  assert.equal(w.log.logins, 2);
  assert.equal(w.count('/api/v1/auth/logout'), 1, 'the replaced session is ended');
});

test('a 409 other than session_key_stale is a plain error without a login', T, async () => {
  const w = scripted({ '/api/v1/thing': () => ({ statusCode: 409, data: { error: { code: 'conflict', message: 'x' } } }) });
  const c = client(w);
  await c.login();
  await assert.rejects(c.request({ url: '/api/v1/thing' }), (err) => !(err instanceof SessionKeyStaleError) && err.code === 'conflict');
  assert.equal(w.log.logins, 1);
});

test('client errors: network_error, http_error, wx_login_failed, invalid_code', T, async () => {
  const w = scripted({
    '/api/v1/down': () => 'network',
    '/api/v1/proxy': () => ({ statusCode: 502, data: '<html>bad gateway</html>' }),
  });
  const c = client(w);
  await c.login();
  await assert.rejects(c.request({ url: '/api/v1/down' }), (err) => err.code === 'network_error' && err.statusCode === 0 && /timeout/.test(err.message));
  assert.equal(w.count('/api/v1/down'), 1, 'never retried');
  await assert.rejects(c.request({ url: '/api/v1/proxy' }), (err) => err.code === 'http_error' && err.statusCode === 502 && err.data === '<html>bad gateway</html>');

  const failing = scripted();
  failing.login = (o) => setImmediate(() => o.fail({ errMsg: 'login:fail auth deny' }));
  await assert.rejects(client(failing).login(), (err) => err.code === 'wx_login_failed' && /auth deny/.test(err.message));

  const bad = scripted({ '/api/v1/auth/login': () => ({ statusCode: 401, data: { error: { code: 'invalid_code', message: 'again' } } }) });
  const bc = client(bad);
  await assert.rejects(bc.login(), (err) => err.code === 'invalid_code');
  // Not a stop: the next request tries again.
  await assert.rejects(bc.request({ url: '/api/v1/me' }), (err) => err.code === 'invalid_code');
  assert.equal(bad.log.logins, 2);
});

test('autoLogin: false needs login() first', T, async () => {
  const w = scripted();
  const c = client(w, { autoLogin: false });
  await assert.rejects(c.request({ url: '/api/v1/me' }), (err) => err.code === 'not_logged_in');
  assert.equal(w.log.requests.length, 0);
  await c.login();
  assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
});

test('request: JSON body, query for GET, headers kept, Authorization owned by the client, auth: false', T, async () => {
  const w = scripted({ '/api/v1/echo': (call) => ({ statusCode: 200, data: call }) });
  const c = client(w, { timeout: 1234 });
  await c.login();
  const r = await c.request({ url: '/api/v1/echo', method: 'post', data: { a: 1 }, header: { 'X-Trace': 't', authorization: 'Bearer forged' } });
  assert.equal(r.data.method, 'POST');
  assert.deepEqual(r.data.data, { a: 1 });
  assert.equal(r.data.header['X-Trace'], 't');
  assert.equal(r.data.header['content-type'], 'application/json');
  assert.equal(r.data.header.Authorization, 'Bearer at1');
  assert.equal(r.data.header.authorization, undefined);
  const pub = await c.request({ url: 'api/v1/echo', auth: false });
  assert.equal(pub.data.header.Authorization, undefined);
  assert.equal(pub.data.header['content-type'], undefined, 'GET has no body');
});

test('sessions() returns the service\'s list', T, async () => {
  const list = [{ id: 's1', client: 'miniprogram', device: 'iPhone', appid: 'wxunit', created_at: '2024-01-01T00:00:00Z', last_seen_at: '2024-01-01T00:00:00Z', current: true }];
  const w = scripted({ '/api/v1/auth/sessions': () => ({ statusCode: 200, data: { sessions: list } }) });
  assert.deepEqual(await client(w).sessions(), list);
  const odd = scripted({ '/api/v1/auth/sessions': () => ({ statusCode: 200, data: {} }) });
  await assert.rejects(client(odd).sessions(), (err) => err.code === 'http_error');
});

test('logoutAll ends every session and forgets the tokens', T, async () => {
  const w = scripted({ '/api/v1/auth/logout/all': () => ({ statusCode: 204, data: '' }) });
  const c = client(w);
  await c.login();
  await c.logoutAll();
  assert.equal(w.count('/api/v1/auth/logout/all'), 1);
  assert.equal(w.storage.size, 0);
  await assert.rejects(c.request({ url: '/api/v1/me' }), (err) => err.code === 'not_logged_in');
});

test('logout that cannot reach the service still forgets the tokens, and says so', T, async () => {
  const w = scripted({ '/api/v1/auth/logout': () => 'network' });
  const c = client(w);
  await c.login();
  await assert.rejects(c.logout(), (err) => err.code === 'network_error');
  assert.equal(w.storage.size, 0);
});

test('a logout waits for a login in flight and wins', T, async () => {
  const w = scripted();
  const c = client(w);
  const login = c.login();
  const logout = c.logout();
  await login;
  await logout;
  assert.equal(c.isLoggedIn(), false);
  assert.equal(w.count('/api/v1/auth/logout'), 1);
});

test('storage that throws: the session lives in memory for this launch', T, async () => {
  const w = scripted();
  w.setStorageSync = () => { throw new Error('storage full'); };
  const c = client(w);
  await c.login();
  assert.equal(c.isLoggedIn(), true);
  assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
});

test('storage keys are per service and AppID; device and appid come from wx', T, async () => {
  const w = scripted();
  w.getDeviceInfo = () => ({ brand: 'Apple', model: 'iPhone 15 Pro' + 'x'.repeat(100) });
  await client(w).login();
  await client(w, { baseURL: BASE + '/', appid: 'wxother' }).login();
  assert.deepEqual([...w.storage.keys()].sort(), [`wxlogin:${BASE}#wxother`, `wxlogin:${BASE}#wxunit`]);
  const bodies = w.log.requests.filter((r) => r.path === '/api/v1/auth/login').map((r) => r.data);
  assert.equal(bodies[0].appid, 'wxunit');
  assert.equal(bodies[1].appid, 'wxother');
  assert.equal(bodies[0].client, 'miniprogram');
  assert.equal(Array.from(bodies[0].device).length, 64);
  assert.ok(bodies[0].device.startsWith('Apple iPhone 15 Pro'));

  const old = scripted();
  delete old.getAccountInfoSync;
  old.getSystemInfoSync = () => ({ brand: 'HUAWEI', model: 'P60' });
  await client(old, { client: 'app' }).login();
  const body = old.log.requests[0].data;
  assert.equal(body.appid, undefined, 'no appid when unknown');
  assert.equal(body.device, 'HUAWEI P60');
  assert.equal(body.client, 'app');
});

test('createClient refuses a missing baseURL or wx', T, () => {
  assert.throws(() => createClient({ wx: scripted() }), TypeError);
  assert.throws(() => createClient({ baseURL: 'api.example.com', wx: scripted() }), TypeError);
  assert.throws(() => createClient({ baseURL: BASE }), /no wx API/);
});

test('fromUni logs in with provider "weixin" and binds uni\'s methods', T, async () => {
  const inner = scripted();
  const seen = [];
  const uni = {
    _inner: inner,
    login(o) { seen.push(o.provider); return this._inner.login(o); },
    request(o) { return this._inner.request(o); },
    getStorageSync(k) { return this._inner.getStorageSync(k); },
    setStorageSync(k, v) { return this._inner.setStorageSync(k, v); },
    removeStorageSync(k) { return this._inner.removeStorageSync(k); },
  };
  const c = createClient({ baseURL: BASE, appid: 'wxuni', wx: fromUni(uni) });
  await c.login();
  assert.deepEqual(seen, ['weixin']);
  assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
});

test('fromTaro: callbacks are used and the promise Taro also returns may reject unseen', T, async () => {
  const inner = scripted();
  const Taro = {
    _inner: inner,
    login(o) { this._inner.login(o); return Promise.resolve({ code: 'ignored' }); },
    request(o) {
      this._inner.request(o);
      return Promise.reject(new Error('Taro also rejects its promise'));
    },
    getStorageSync(k) { return this._inner.getStorageSync(k); },
    setStorageSync(k, v) { return this._inner.setStorageSync(k, v); },
    removeStorageSync(k) { return this._inner.removeStorageSync(k); },
    getAccountInfoSync() { return { miniProgram: { appId: 'wxtaro' } }; },
  };
  let unhandled = 0;
  const onUnhandled = () => { unhandled++; };
  process.on('unhandledRejection', onUnhandled);
  try {
    const c = createClient({ baseURL: BASE, wx: fromTaro(Taro) });
    await c.login();
    assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
    await new Promise((r) => setImmediate(r));
    assert.equal(unhandled, 0);
    assert.equal(inner.log.requests[0].data.appid, 'wxtaro');
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

// ---- the file itself: what a mini program can run

test('runs with nothing but the ECMAScript built-ins and wx (no require, fetch, process, timers)', T, async () => {
  const w = scripted();
  const mod = { exports: {} };
  const sandbox = vm.createContext({ module: mod, exports: mod.exports, wx: w });
  vm.runInContext(SOURCE, sandbox, { filename: 'wxlogin.js' });
  const c = mod.exports.createClient({ baseURL: BASE }); // the global wx
  await c.login();
  assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
  w.setStorageSync(`wxlogin:${BASE}#wxunit`, Object.assign(w.getStorageSync(`wxlogin:${BASE}#wxunit`), { access_token: 'old' }));
  assert.equal((await c.request({ url: '/api/v1/me' })).statusCode, 200);
  assert.equal(w.count('/api/v1/auth/refresh'), 1);
});

// code strips comments, strings and regular expressions, leaving the code.
function code(src) {
  let out = '';
  let i = 0;
  let prev = '';
  while (i < src.length) {
    const ch = src[i];
    const next = src[i + 1];
    if (ch === '/' && next === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (ch === '/' && next === '*') {
      i = src.indexOf('*/', i + 2) + 2;
    } else if (ch === '"' || ch === "'" || ch === '`') {
      let j = i + 1;
      while (src[j] !== ch) j += src[j] === '\\' ? 2 : 1;
      out += ch + ch;
      i = j + 1;
      prev = ch;
    } else if (ch === '/' && (prev === '' || '(,=:[!&|?{};'.includes(prev))) {
      let j = i + 1;
      let cls = false;
      while (cls || src[j] !== '/') {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') cls = true;
        else if (src[j] === ']') cls = false;
        j++;
      }
      j++;
      while (/[a-z]/.test(src[j])) j++;
      out += '/r/';
      i = j;
      prev = '/';
    } else {
      out += ch;
      if (!/\s/.test(ch)) prev = ch;
      i++;
    }
  }
  return out;
}

test('syntax a mini program runs without a compiler: no ?., ??, async/await, spread, template strings, classes', T, () => {
  const c = code(SOURCE);
  assert.ok(c.includes('createClient') && !c.includes('Bearer'), 'the scanner strips strings');
  const forbidden = [
    [/\?\.(?!\d)/, 'optional chaining'],
    [/\?\?/, 'nullish coalescing'],
    [/\basync\b/, 'async functions'],
    [/\bawait\b/, 'await'],
    [/\.\.\./, 'spread/rest'],
    [/``/, 'template literals'],
    [/\bclass\b/, 'classes (transpiled, they break instanceof Error)'],
    [/\bimport\b|\bexport\b/, 'ES modules (mini programs require CommonJS)'],
    [/\*\*/, 'exponent operator'],
  ];
  for (const [re, what] of forbidden) {
    const m = c.match(re);
    assert.ok(!m, `${what}: ${m && c.slice(Math.max(0, m.index - 40), m.index + 40)}`);
  }
});

test('only the mini-program API: no Node built-ins, no fetch, no browser globals', T, () => {
  const c = code(SOURCE);
  for (const name of ['require', 'fetch', 'process', 'globalThis', 'window', 'document', 'XMLHttpRequest', 'Buffer', 'setTimeout', 'setInterval', 'console']) {
    assert.doesNotMatch(c, new RegExp(`(^|[^.\\w])${name}\\b`), name);
  }
  // Every wx function the client calls is one a mini program has.
  const used = new Set();
  for (const m of SOURCE.matchAll(/(?:\b_api|\bapi)\.(\w+)\(/g)) used.add(m[1]);
  for (const m of SOURCE.matchAll(/wxCall\([^,]+, '(\w+)'/g)) used.add(m[1]);
  const allowed = ['login', 'request', 'getStorageSync', 'setStorageSync', 'removeStorageSync', 'getAccountInfoSync'];
  assert.deepEqual([...used].filter((n) => !allowed.includes(n)), []);
  assert.ok(used.has('login') && used.has('request') && used.has('getStorageSync'));
});
