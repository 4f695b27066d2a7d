// Test harness: the real service (built from ./app) with its WeChat
// emulator, and a fake `wx` that plays the device through the emulator's
// device API. Node built-ins only.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');

/** The development AppID the service and its emulator use by default. */
const DEV_APPID = 'wx0000000000000dev';

let builtBinary = null;

// serverBinary is the service's executable: WXLOGIN_SERVER_BIN (the Go
// test that runs these tests builds it once), else built here once per
// test file (Go's build cache makes that quick after the first time).
function serverBinary() {
  if (process.env.WXLOGIN_SERVER_BIN) {
    return process.env.WXLOGIN_SERVER_BIN;
  }
  if (!builtBinary) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxlogin-bin-'));
    builtBinary = path.join(dir, 'wxlogin');
    execFileSync('go', ['build', '-o', builtBinary, './app'], { cwd: repoRoot, stdio: 'inherit' });
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return builtBinary;
}

// Ports below the kernel's ephemeral range (32768–60999), as the Go tests'
// testutil.FreeAddr: a port found with listen(0) and closed again is an
// ephemeral one, which any outgoing connection beside us may take as its
// source port before the service binds it.
const handedOut = new Set();

function tryPort(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function freePort() {
  for (let i = 0; i < 1000; i++) {
    const port = 10000 + Math.floor(Math.random() * 10000);
    if (handedOut.has(port)) continue;
    if (await tryPort(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port in 10000-19999');
}

/**
 * Polls fn until it returns a truthy value or the deadline passes.
 * @template T
 * @param {() => Promise<T>} fn
 * @param {string} what said in the timeout error
 * @param {number} [ms]
 * @returns {Promise<T>}
 */
async function eventually(fn, what, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts the real service in development (SQLite in a temporary directory,
 * the in-process WeChat emulator) on free ports and waits for /readyz.
 * @param {Record<string,string>} [env] extra APP_* variables
 */
async function startService(env = {}) {
  const bin = serverBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxlogin-js-'));
  const apiPort = await freePort();
  const emuPort = await freePort();
  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('APP_')) childEnv[k] = v; // hermetic: no APP_* from outside
  }
  Object.assign(childEnv, {
    APP_ENV: 'development',
    APP_DATA_DIR: dir,
    APP_HTTP_ADDR: `127.0.0.1:${apiPort}`,
    APP_WECHAT_EMULATOR_ADDR: `127.0.0.1:${emuPort}`,
    APP_TOKEN_SECRET: crypto.randomBytes(32).toString('hex'),
  }, env);
  const proc = spawn(bin, [], { cwd: dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stdout.on('data', (b) => { logs += b; });
  proc.stderr.on('data', (b) => { logs += b; });
  let exited = null;
  const exit = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(); }));
  const svc = {
    baseURL: `http://127.0.0.1:${apiPort}`,
    emulatorURL: `http://127.0.0.1:${emuPort}`,
    logs: () => logs,
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      await exit;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await eventually(async () => {
      if (exited) throw new Error(`the service exited (${JSON.stringify(exited)})`);
      const r = await fetch(svc.baseURL + '/readyz');
      const e = await fetch(svc.emulatorURL + '/emulator/stats');
      return r.status === 200 && e.status === 200;
    }, 'the service to be ready');
  } catch (e) {
    await svc.stop();
    throw new Error(`${e.message}\n--- service output ---\n${logs}`);
  }
  return svc;
}

/** POSTs JSON to url and returns {status, body}. */
async function post(url, body, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: Object.assign({ 'content-type': 'application/json' }, headers),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: r.status, body: parsed };
}

/**
 * A fake `wx` for one device: login calls the emulator's /emulator/login
 * for `openid`; request uses fetch; storage is an in-memory map (values
 * copied through JSON, as wx stores them). Every call is recorded.
 *
 * @param {{emulatorURL: string, openid: string, appid?: string,
 *   device?: {brand: string, model: string}, storage?: Map,
 *   intercept?: (call: Object) => Object}} o
 *   storage: share one between fakes to play two clients on one device;
 *   intercept: rewrite a request before it is sent (tests of odd answers)
 */
function fakeWx(o) {
  const storage = o.storage || new Map();
  const log = { logins: 0, requests: [] };
  const w = {
    storage,
    log,
    /** Requests sent to path (method optional), with their answers' statuses. */
    sent(pathname, method) {
      return log.requests.filter((r) => r.path === pathname && (!method || r.method === method));
    },
    reset() {
      log.logins = 0;
      log.requests.length = 0;
    },
    login(opts) {
      log.logins++;
      post(o.emulatorURL + '/emulator/login', { openid: o.openid }).then((r) => {
        if (r.status !== 200) throw new Error(`emulator login: ${r.status} ${JSON.stringify(r.body)}`);
        opts.success({ code: r.body.code, errMsg: 'login:ok' });
      }).catch((e) => opts.fail({ errMsg: 'login:fail ' + e.message }));
    },
    request(opts) {
      let call = { url: opts.url, method: opts.method || 'GET', data: opts.data, header: Object.assign({}, opts.header) };
      if (o.intercept) call = o.intercept(call) || call;
      const u = new URL(call.url);
      let body;
      if (call.method === 'GET' || call.method === 'HEAD') {
        if (call.data && typeof call.data === 'object') {
          for (const [k, v] of Object.entries(call.data)) u.searchParams.set(k, String(v));
        }
      } else if (call.data !== undefined) {
        body = typeof call.data === 'string' ? call.data : JSON.stringify(call.data);
      }
      const auth = Object.entries(call.header).find(([k]) => k.toLowerCase() === 'authorization');
      const rec = { path: u.pathname, method: call.method, body: call.data, authorization: auth ? auth[1] : undefined, status: undefined };
      log.requests.push(rec);
      fetch(u, { method: call.method, headers: call.header, body }).then(async (r) => {
        const text = await r.text();
        let data = text;
        try { data = JSON.parse(text); } catch (e) { /* wx leaves non-JSON as text */ }
        const header = {};
        r.headers.forEach((v, k) => { header[k] = v; });
        rec.status = r.status;
        opts.success({ statusCode: r.status, data, header, errMsg: 'request:ok' });
      }).catch((e) => opts.fail({ errMsg: 'request:fail ' + e.message }));
      return { abort() {} };
    },
    getStorageSync(k) {
      return storage.has(k) ? JSON.parse(storage.get(k)) : '';
    },
    setStorageSync(k, v) {
      storage.set(k, JSON.stringify(v));
    },
    removeStorageSync(k) {
      storage.delete(k);
    },
    getAccountInfoSync() {
      return { miniProgram: { appId: o.appid || DEV_APPID, envVersion: 'develop', version: '' } };
    },
    getDeviceInfo() {
      return Object.assign({ brand: 'devtools', model: 'iPhone 15', system: 'iOS 17.0', platform: 'devtools' }, o.device);
    },
  };
  return w;
}

/** The client's storage key for a service and the development AppID. */
function storageKey(baseURL, appid = DEV_APPID) {
  return `wxlogin:${baseURL}#${appid}`;
}

module.exports = { DEV_APPID, startService, fakeWx, post, eventually, storageKey, repoRoot };
