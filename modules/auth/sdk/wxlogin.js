/**
 * wxlogin mini-program client: wx.login → your service's login token, kept
 * in storage, sent as "Authorization: Bearer …" on every request, refreshed
 * when it expires, with no dependencies.
 *
 * Copy this file into the mini program (or download it from the service:
 * GET /sdk/wxlogin.js) and require it:
 *
 *     const { createClient } = require('./wxlogin.js')
 *     const client = createClient({ baseURL: 'https://api.example.com' })
 *     client.request({ url: '/api/v1/me' }).then(res => console.log(res.data))
 *
 * It uses only the mini-program API (wx.login, wx.request, wx storage,
 * wx.getAccountInfoSync, wx.getDeviceInfo / wx.getSystemInfoSync) and plain
 * promises — no async/await, no optional chaining — so it runs on every
 * base library, with or without "ES6 → ES5" and "enhanced compile".
 *
 * Recovery policy (never loops; every request is sent at most twice):
 *
 * - 401 from a business route: the access token is refreshed once for all
 *   requests in flight (single-flight) and the requests are replayed once.
 *   When the refresh token no longer works, the client calls wx.login and
 *   logs in again, once, then replays. A second 401 after the replay is an
 *   error for the caller.
 * - 401 with reason "logged_out" or "revoked": the session is over, so the
 *   client logs in again at once (a refresh would only fail).
 * - 401 with reason "user_banned", "user_deleted", "replaced" or
 *   "session_limit", and any 403 from login or refresh: the client stops.
 *   It forgets its tokens and every request rejects with that error, without
 *   touching the network, until the page calls login() (a person's action).
 *   A silent login would bring back a banned or deleted user, or push
 *   another device out of its session and start a tug of war between them.
 * - 409 "session_key_stale" (open-data routes): the client calls wx.login
 *   and logs in again, so the server holds the session key that new data
 *   will be encrypted with, then rejects with a SessionKeyStaleError: the
 *   page asks the person for the data again (e.g. taps the button again).
 * - Network failures and 5xx answers are never retried.
 */
'use strict';

var API = {
  login: '/api/v1/auth/login',
  refresh: '/api/v1/auth/refresh',
  logout: '/api/v1/auth/logout',
  logoutAll: '/api/v1/auth/logout/all',
  sessions: '/api/v1/auth/sessions',
};

// 401 "unauthenticated" reasons after which the client stops (see above).
var STOP_REASONS = { user_banned: true, user_deleted: true, replaced: true, session_limit: true };
// 401 "unauthenticated" reasons after which a refresh cannot work.
var RELOGIN_REASONS = { logged_out: true, revoked: true };

var MAX_DEVICE_CHARS = 64;

/**
 * An error from the service or from the client itself. The page tests
 * `code` (stable) and, for 401 "unauthenticated", `reason`.
 *
 * Codes from the service are its error codes ("unauthenticated",
 * "invalid_code", "user_banned", "session_key_stale", …). The client's own:
 * "network_error" (wx.request failed; statusCode 0), "http_error" (an answer
 * without the service's error body, e.g. from a proxy), "wx_login_failed"
 * (wx.login failed), "not_logged_in" (after logout(), or with
 * autoLogin: false before login()), "invalid_url" (a URL outside baseURL).
 *
 * @class
 * @param {string} message what a person or developer should know
 * @param {{statusCode?: number, code?: string, reason?: string, data?: *, header?: Object}} [fields]
 * @property {string} name "WxLoginError" (or "SessionKeyStaleError")
 * @property {number} statusCode HTTP status, 0 when there was no answer
 * @property {string} code stable error code
 * @property {string} reason why a 401 "unauthenticated" happened ("expired",
 *   "logged_out", "replaced", …), "" when the service did not say
 * @property {*} data the answer's body, when there was one
 * @property {Object} header the answer's headers, when there was one
 */
function WxLoginError(message, fields) {
  var f = fields || {};
  this.name = 'WxLoginError';
  this.message = message;
  this.statusCode = f.statusCode || 0;
  this.code = f.code || 'http_error';
  this.reason = f.reason || '';
  this.data = f.data;
  this.header = f.header || {};
  if (typeof Error.captureStackTrace === 'function') {
    Error.captureStackTrace(this, this.constructor);
  } else {
    this.stack = new Error(message).stack;
  }
}
// Plain prototypes rather than `class … extends Error`: transpiled to ES5,
// a subclass of Error loses its prototype and instanceof stops working.
WxLoginError.prototype = Object.create(Error.prototype, {
  constructor: { value: WxLoginError, writable: true, configurable: true },
});

/**
 * The open data (phone number, user info) no longer decrypts with the
 * session key the service holds: the device called wx.login after
 * producing it. The client has already called wx.login and logged in again;
 * ask the person for the data again (the new data will decrypt). Its code is
 * "session_key_stale" and statusCode 409; it is also a WxLoginError.
 *
 * @class
 * @extends WxLoginError
 * @param {string} message
 * @param {{statusCode?: number, code?: string, reason?: string, data?: *, header?: Object}} [fields]
 */
function SessionKeyStaleError(message, fields) {
  WxLoginError.call(this, message, fields);
  this.name = 'SessionKeyStaleError';
}
SessionKeyStaleError.prototype = Object.create(WxLoginError.prototype, {
  constructor: { value: SessionKeyStaleError, writable: true, configurable: true },
});

/**
 * Creates a client for one service.
 *
 * @param {Object} options
 * @param {string} options.baseURL the service's root, e.g. "https://api.example.com"
 *   (requests go to baseURL + url; the token is never sent anywhere else)
 * @param {string} [options.appid] the mini program's AppID; default
 *   wx.getAccountInfoSync().miniProgram.appId (sent at login, and part of
 *   the storage key)
 * @param {Object} [options.wx] the platform API, default the global `wx`;
 *   uni-app and Taro pass fromUni(uni) / fromTaro(Taro)
 * @param {string} [options.client] the kind of client sent at login, default "miniprogram"
 * @param {string} [options.device] the device's name sent at login (≤ 64
 *   characters), default brand and model from wx.getDeviceInfo
 * @param {boolean} [options.autoLogin] log in on the first request when
 *   there is no token, default true
 * @param {number} [options.timeout] timeout of every wx.request and wx.login, in ms
 * @param {string} [options.storageKey] default "wxlogin:" + baseURL + "#" + appid
 * @returns {Client}
 */
function createClient(options) {
  var opts = options || {};
  if (typeof opts.baseURL !== 'string' || !/^https?:\/\/[^/]/.test(opts.baseURL)) {
    throw new TypeError('wxlogin: createClient needs baseURL, an absolute http(s) URL');
  }
  var api = opts.wx || (typeof wx !== 'undefined' ? wx : null); // eslint-disable-line no-undef
  if (!api || typeof api.login !== 'function' || typeof api.request !== 'function') {
    throw new TypeError('wxlogin: no wx API (outside a mini program pass options.wx, e.g. fromUni(uni))');
  }
  return new Client({
    api: api,
    baseURL: opts.baseURL.replace(/\/+$/, ''),
    appid: opts.appid || accountAppID(api),
    client: opts.client || 'miniprogram',
    device: opts.device !== undefined ? truncate(String(opts.device), MAX_DEVICE_CHARS) : deviceName(api),
    autoLogin: opts.autoLogin !== false,
    timeout: opts.timeout,
    storageKey: opts.storageKey,
  });
}

/**
 * A logged-in connection to the service; made by createClient. Every method
 * returns a promise. One client per mini program: create it in app.js and
 * share it (getApp().client).
 *
 * @class
 * @param {Object} cfg see createClient
 */
function Client(cfg) {
  this._api = cfg.api;
  this._baseURL = cfg.baseURL;
  this._appid = cfg.appid;
  this._client = cfg.client;
  this._device = cfg.device;
  this._autoLogin = cfg.autoLogin;
  this._timeout = cfg.timeout;
  this._key = cfg.storageKey || 'wxlogin:' + cfg.baseURL + (cfg.appid ? '#' + cfg.appid : '');
  this._memory = null; // the tokens, when storage is unusable
  this._memoryOnly = false;
  this._generation = 0; // completed logins, to tell whether one happened since a request left
  this._loggingIn = null; // the login in flight, shared by everyone who needs one
  this._renewing = null; // the refresh (or re-login) in flight, shared likewise
  this._halted = null; // the error that stopped the client, see the file's doc
  this._signedOut = false; // logout() was called and login() not since
}

/**
 * Calls wx.login and logs in: a new session with new tokens, which are
 * stored. When the client already held a session, that one is ended
 * (best effort). Also the way out of a stop (user_banned, replaced, …) and
 * of logout(). Concurrent calls share one login.
 *
 * @returns {Promise<Object>} the user, as the service returns it
 */
Client.prototype.login = function () {
  this._halted = null;
  this._signedOut = false;
  return this._loginShared(true).then(function (body) {
    return body.user;
  });
};

/**
 * Logs in when the client holds no tokens; otherwise does nothing. Call it
 * from App.onLaunch to log in early.
 *
 * @returns {Promise<void>}
 */
Client.prototype.ensureLogin = function () {
  return this._tokensForRequest().then(function () {});
};

/**
 * Whether the client holds tokens (they may have expired; a request will
 * refresh them).
 *
 * @returns {boolean}
 */
Client.prototype.isLoggedIn = function () {
  return !!this._load();
};

/**
 * Sends a request to the service with the bearer token, logging in first
 * when needed; see the file's doc for what happens on 401 and 409. Answers
 * with status 400 and above reject with a WxLoginError.
 *
 * @param {Object} options
 * @param {string} options.url a path under baseURL ("/api/v1/me"), or an
 *   absolute URL that starts with baseURL
 * @param {string} [options.method] default "GET"
 * @param {*} [options.data] the body (sent as JSON), or the query for GET
 * @param {Object} [options.header] extra headers (Authorization is the client's)
 * @param {boolean} [options.auth] false sends no token and skips all recovery
 * @param {number} [options.timeout] in ms
 * @returns {Promise<{statusCode: number, data: *, header: Object}>}
 */
Client.prototype.request = function (options) {
  var req = options || {};
  var url = this._url(req.url);
  if (!url) {
    return Promise.reject(new WxLoginError('wxlogin: url must be a path or start with ' + this._baseURL + ' (the token goes nowhere else)', { code: 'invalid_url' }));
  }
  if (req.auth === false) {
    return this._send(req, url, null).then(settle);
  }
  return this._attempt(req, url, false);
};

/**
 * Ends this session at the service and forgets the tokens. Requests then
 * reject with "not_logged_in" until login() is called. The tokens are
 * forgotten even when the service cannot be reached; the promise then
 * rejects with that error.
 *
 * @returns {Promise<void>}
 */
Client.prototype.logout = function () {
  return this._end(API.logout);
};

/**
 * Ends every session of the user (all devices) and forgets the tokens, like
 * logout().
 *
 * @returns {Promise<void>}
 */
Client.prototype.logoutAll = function () {
  return this._end(API.logoutAll);
};

/**
 * The user's sessions (devices logged in), this one marked current.
 *
 * @returns {Promise<Array<{id: string, client: string, device: string, appid: string, created_at: string, last_seen_at: string, current: boolean}>>}
 */
Client.prototype.sessions = function () {
  return this.request({ url: API.sessions }).then(function (res) {
    var list = res.data && res.data.sessions;
    if (!Array.isArray(list)) {
      throw new WxLoginError('wxlogin: the sessions answer has no "sessions" list', { statusCode: res.statusCode, code: 'http_error', data: res.data, header: res.header });
    }
    return list;
  });
};

// ---- requests

// _attempt sends a request with the current token and recovers from 401
// (once) and 409 session_key_stale.
Client.prototype._attempt = function (req, url, replay) {
  var self = this;
  return this._tokensForRequest().then(function (tok) {
    var generation = self._generation;
    return self._send(req, url, tok).then(function (res) {
      if (res.statusCode === 409 && errorCode(res) === 'session_key_stale') {
        var stale = errorFrom(res, SessionKeyStaleError);
        return self._recoverStaleKey(generation).then(function () {
          throw stale;
        });
      }
      if (res.statusCode !== 401) {
        return settle(res);
      }
      var err = errorFrom(res);
      var pending = self._loggingIn || self._renewing;
      var cur = self._load();
      if (!replay && (pending || (cur && cur.access_token !== tok.access_token))) {
        // The tokens are being, or have been, replaced since this request
        // left: the 401 is about the old ones, whatever its reason.
        return Promise.resolve(pending).then(function () {
          return self._attempt(req, url, true);
        });
      }
      if (STOP_REASONS[err.reason]) {
        throw self._halt(err);
      }
      if (replay) {
        throw err; // the one replay also failed: never loop
      }
      return self._renew(tok.access_token, err.reason).then(function () {
        return self._attempt(req, url, true);
      });
    });
  });
};

// _tokensForRequest waits for a login or refresh in flight, logs in when
// there is no token, refreshes ahead when the token is about to expire
// (once: renewed says that has happened for this request).
Client.prototype._tokensForRequest = function (renewed) {
  var self = this;
  if (this._halted) {
    return Promise.reject(this._halted);
  }
  var pending = this._loggingIn || this._renewing;
  if (pending) {
    return pending.then(function () {
      return self._tokensForRequest(true);
    });
  }
  var tok = this._load();
  if (!tok) {
    if (this._signedOut || !this._autoLogin) {
      return Promise.reject(new WxLoginError('wxlogin: not logged in; call login()', { code: 'not_logged_in' }));
    }
    return this._loginShared(false).then(function () {
      return self._tokensForRequest(true);
    });
  }
  if (!renewed && expiresSoon(tok)) {
    return this._renew(tok.access_token, 'expired').then(function () {
      return self._tokensForRequest(true);
    });
  }
  return Promise.resolve(tok);
};

// _send performs one wx.request; it resolves with every HTTP answer and
// rejects only when there is none.
Client.prototype._send = function (req, url, tok) {
  var header = {};
  var h = req.header || {};
  Object.keys(h).forEach(function (k) {
    if (k.toLowerCase() !== 'authorization') {
      header[k] = h[k];
    }
  });
  var method = (req.method || 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'HEAD' && !hasHeader(header, 'content-type')) {
    header['content-type'] = 'application/json';
  }
  if (tok) {
    header.Authorization = 'Bearer ' + tok.access_token;
  }
  var call = {};
  Object.keys(req).forEach(function (k) {
    if (k !== 'auth' && k !== 'success' && k !== 'fail' && k !== 'complete') {
      call[k] = req[k];
    }
  });
  call.url = url;
  call.method = method;
  call.header = header;
  if (call.timeout === undefined && this._timeout !== undefined) {
    call.timeout = this._timeout;
  }
  return wxCall(this._api, 'request', call).then(function (res) {
    return { statusCode: res.statusCode, data: parseBody(res.data), header: res.header || {} };
  }, function (err) {
    throw new WxLoginError('wxlogin: the request failed: ' + errMsg(err), { code: 'network_error' });
  });
};

Client.prototype._url = function (url) {
  if (typeof url !== 'string' || url === '') {
    return '';
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.indexOf('//') === 0) {
    var base = this._baseURL;
    return url === base || url.indexOf(base + '/') === 0 || url.indexOf(base + '?') === 0 ? url : '';
  }
  return this._baseURL + (url.charAt(0) === '/' ? '' : '/') + url;
};

// ---- login, refresh, stop

// _loginShared runs one wx.login + login for everyone who needs one now.
// replacing: end the session the client held (an explicit login or a stale
// key; not a re-login after a dead session, which has nothing to end).
Client.prototype._loginShared = function (replacing) {
  var self = this;
  if (this._loggingIn) {
    return this._loggingIn;
  }
  var previous = replacing ? this._load() : null;
  var p = wxCall(this._api, 'login', this._timeout !== undefined ? { timeout: this._timeout } : {}).then(function (res) {
    if (!res || typeof res.code !== 'string' || res.code === '') {
      throw new WxLoginError('wxlogin: wx.login gave no code: ' + errMsg(res), { code: 'wx_login_failed' });
    }
    var body = { code: res.code, client: self._client };
    if (self._appid) {
      body.appid = self._appid;
    }
    if (self._device) {
      body.device = self._device;
    }
    return self._post(API.login, body, null);
  }, function (err) {
    if (err instanceof WxLoginError) {
      throw err;
    }
    throw new WxLoginError('wxlogin: wx.login failed: ' + errMsg(err), { code: 'wx_login_failed' });
  }).then(function (res) {
    if (res.statusCode < 200 || res.statusCode > 299 || !res.data || !res.data.access_token) {
      var err = errorFrom(res);
      throw res.statusCode === 403 ? self._halt(err) : err;
    }
    self._save(tokensFrom(res.data));
    self._generation++;
    self._halted = null; // a stop that came from the old session is over
    if (previous && previous.access_token !== res.data.access_token) {
      // Best effort: the old session would otherwise live on unused until
      // its refresh token expires, and count against a session limit.
      return self._post(API.logout, null, previous.access_token).then(function () {
        return res.data;
      }, function () {
        return res.data;
      });
    }
    return res.data;
  });
  this._loggingIn = p;
  var done = function () {
    if (self._loggingIn === p) {
      self._loggingIn = null;
    }
  };
  p.then(done, done);
  return p;
};

// _renew replaces the tokens after the service refused sentToken, once for
// every request that saw the refusal: a refresh, or a login when the
// refresh token is gone, refused or pointless for reason.
Client.prototype._renew = function (sentToken, reason) {
  var self = this;
  if (this._loggingIn) {
    return this._loggingIn;
  }
  if (this._renewing) {
    return this._renewing;
  }
  var cur = this._load();
  if (cur && cur.access_token !== sentToken) {
    return Promise.resolve(); // someone renewed since this request left: replay
  }
  if (!cur && (this._signedOut || !this._autoLogin)) {
    return Promise.reject(new WxLoginError('wxlogin: not logged in; call login()', { code: 'not_logged_in' }));
  }
  var p;
  if (!cur || RELOGIN_REASONS[reason] || !cur.refresh_token || refreshExpired(cur)) {
    p = this._loginShared(false);
  } else {
    p = this._refresh(cur).catch(function (err) {
      if (err.statusCode === 403 || STOP_REASONS[err.reason]) {
        throw self._halt(err);
      }
      if (err.statusCode === 401 || err.statusCode === 400) {
        // Spent, revoked, expired or unknown: the session is over.
        self._save(null);
        return self._loginShared(false);
      }
      throw err; // network, 5xx: the refresh token may still be good
    });
  }
  this._renewing = p;
  var done = function () {
    if (self._renewing === p) {
      self._renewing = null;
    }
  };
  p.then(done, done);
  return p;
};

Client.prototype._refresh = function (cur) {
  var self = this;
  return this._post(API.refresh, { refresh_token: cur.refresh_token }, null).then(function (res) {
    if (res.statusCode < 200 || res.statusCode > 299 || !res.data || !res.data.access_token) {
      throw errorFrom(res);
    }
    var now = self._load();
    // Only if nobody (a login, another client on this storage) replaced
    // the tokens meanwhile: never overwrite a newer session with an older.
    if (!now || now.refresh_token === cur.refresh_token) {
      self._save(tokensFrom(res.data));
    }
  });
};

// _recoverStaleKey makes the service hold the device's newest session key:
// wx.login and login, unless a login happened since the request left (the
// data is stale either way, and the key is already fresh).
Client.prototype._recoverStaleKey = function (generation) {
  if (this._loggingIn) {
    return this._loggingIn;
  }
  if (this._generation !== generation) {
    return Promise.resolve();
  }
  return this._loginShared(true);
};

// _halt stops the client (see the file's doc) and returns err.
Client.prototype._halt = function (err) {
  this._save(null);
  this._halted = err;
  return err;
};

Client.prototype._end = function (path) {
  var self = this;
  this._signedOut = true;
  var pending = this._loggingIn || this._renewing || Promise.resolve();
  return pending.then(noop, noop).then(function () {
    var tok = self._load();
    self._save(null);
    self._halted = null;
    if (!tok) {
      return undefined;
    }
    return self._post(path, null, tok.access_token).then(function (res) {
      var reason = res.statusCode === 401 ? errorFrom(res).reason : '';
      if (res.statusCode !== 401 || !tok.refresh_token || STOP_REASONS[reason] || RELOGIN_REASONS[reason]) {
        return res;
      }
      // The access token expired: a fresh one ends the session properly.
      return self._post(API.refresh, { refresh_token: tok.refresh_token }, null).then(function (r) {
        if (r.statusCode < 200 || r.statusCode > 299 || !r.data || !r.data.access_token) {
          return res; // the session is already over
        }
        return self._post(path, null, r.data.access_token);
      });
    }).then(function (res) {
      if (res.statusCode >= 400 && res.statusCode !== 401) {
        throw errorFrom(res);
      }
    });
  });
};

// _post sends a JSON POST to one of the service's own routes.
Client.prototype._post = function (path, body, accessToken) {
  var req = { method: 'POST' };
  if (body) {
    req.data = body;
  }
  return this._send(req, this._baseURL + path, accessToken ? { access_token: accessToken } : null);
};

// ---- storage

Client.prototype._load = function () {
  if (!this._memoryOnly) {
    try {
      var v = this._api.getStorageSync(this._key);
      return v && typeof v === 'object' && v.access_token ? v : null;
    } catch (e) {
      this._memoryOnly = true;
    }
  }
  return this._memory;
};

Client.prototype._save = function (tokens) {
  this._memory = tokens;
  if (this._memoryOnly) {
    return;
  }
  try {
    if (tokens) {
      this._api.setStorageSync(this._key, tokens);
    } else {
      this._api.removeStorageSync(this._key);
    }
  } catch (e) {
    // Storage full or unavailable: keep the session for this launch.
    this._memoryOnly = true;
  }
};

// ---- adapters

/**
 * Makes uni-app's `uni` object fit createClient's `wx` option: uni.login is
 * called with provider "weixin" (so the App build never shows a provider
 * list), everything else is passed through.
 *
 *     const client = createClient({ baseURL, wx: fromUni(uni) })
 *
 * @param {Object} uni uni-app's global `uni`
 * @param {{provider?: string}} [options] the login provider, default "weixin"
 * @returns {Object} an object with wx's shape
 */
function fromUni(uni, options) {
  var provider = (options && options.provider) || 'weixin';
  var api = adapt(uni);
  api.login = function (o) {
    return uni.login(Object.assign({ provider: provider }, o));
  };
  return api;
}

/**
 * Makes Taro's `Taro` object fit createClient's `wx` option: Taro.login and
 * Taro.request take wx's success/fail callbacks (they also return promises,
 * which the client does not use).
 *
 *     import Taro from '@tarojs/taro'
 *     const client = createClient({ baseURL, wx: fromTaro(Taro) })
 *
 * @param {Object} taro the `Taro` object from @tarojs/taro
 * @returns {Object} an object with wx's shape
 */
function fromTaro(taro) {
  return adapt(taro);
}

// adapt binds the methods the client uses, so that `this` stays right.
function adapt(obj) {
  if (!obj || typeof obj.login !== 'function' || typeof obj.request !== 'function') {
    throw new TypeError('wxlogin: the object has no login/request functions');
  }
  var out = {};
  ['login', 'request', 'getStorageSync', 'setStorageSync', 'removeStorageSync', 'getAccountInfoSync', 'getDeviceInfo', 'getSystemInfoSync'].forEach(function (name) {
    if (typeof obj[name] === 'function') {
      out[name] = obj[name].bind(obj);
    }
  });
  return out;
}

// ---- helpers

// wxCall calls a callback-style wx API as a promise.
function wxCall(api, name, options) {
  return new Promise(function (resolve, reject) {
    var o = Object.assign({}, options, { success: resolve, fail: reject });
    try {
      var r = api[name](o);
      // Taro and uni-app may also return a promise; its rejection is
      // handled through fail, so keep it from being reported as unhandled.
      if (r && typeof r.then === 'function' && typeof r.catch === 'function') {
        r.catch(noop);
      }
    } catch (e) {
      reject(e);
    }
  });
}

function settle(res) {
  if (res.statusCode >= 400) {
    throw errorFrom(res);
  }
  return res;
}

function errorCode(res) {
  var e = res.data && typeof res.data === 'object' ? res.data.error : null;
  return e && typeof e.code === 'string' ? e.code : '';
}

// errorFrom turns an error answer into a WxLoginError (or Type).
function errorFrom(res, Type) {
  var E = Type || WxLoginError;
  var e = res.data && typeof res.data === 'object' ? res.data.error : null;
  var ok = e && typeof e === 'object' && typeof e.code === 'string';
  return new E(ok && typeof e.message === 'string' ? e.message : 'HTTP ' + res.statusCode, {
    statusCode: res.statusCode,
    code: ok ? e.code : 'http_error',
    reason: ok && typeof e.reason === 'string' ? e.reason : '',
    data: res.data,
    header: res.header,
  });
}

// parseBody parses a JSON body the platform left as text.
function parseBody(data) {
  if (typeof data === 'string' && /^\s*[{[]/.test(data)) {
    try {
      return JSON.parse(data);
    } catch (e) {
      return data;
    }
  }
  return data;
}

function tokensFrom(body) {
  var now = Date.now();
  var t = { access_token: body.access_token, refresh_token: body.refresh_token || '', issued_at: now };
  // Expiry by the device's clock, measured from now: a device clock that is
  // off does not matter, only one that jumps.
  if (typeof body.expires_in === 'number' && body.expires_in > 0) {
    t.expires_at = now + body.expires_in * 1000;
  }
  if (typeof body.refresh_expires_in === 'number' && body.refresh_expires_in > 0) {
    t.refresh_expires_at = now + body.refresh_expires_in * 1000;
  }
  return t;
}

// expiresSoon: refresh ahead, a tenth of the lifetime but at most a minute
// before expiry, to spare the round trip of a 401.
function expiresSoon(t) {
  if (!t.expires_at || !t.issued_at) {
    return false;
  }
  var margin = Math.min(60000, (t.expires_at - t.issued_at) / 10);
  return Date.now() >= t.expires_at - margin;
}

function refreshExpired(t) {
  return !!t.refresh_expires_at && Date.now() >= t.refresh_expires_at;
}

function hasHeader(header, name) {
  return Object.keys(header).some(function (k) {
    return k.toLowerCase() === name;
  });
}

function accountAppID(api) {
  try {
    var info = typeof api.getAccountInfoSync === 'function' ? api.getAccountInfoSync() : null;
    return (info && info.miniProgram && info.miniProgram.appId) || '';
  } catch (e) {
    return '';
  }
}

// deviceName is brand and model, from getDeviceInfo (base library 2.20.1)
// or the older getSystemInfoSync.
function deviceName(api) {
  var names = ['getDeviceInfo', 'getSystemInfoSync'];
  for (var i = 0; i < names.length; i++) {
    try {
      if (typeof api[names[i]] === 'function') {
        var info = api[names[i]]();
        if (info && (info.brand || info.model)) {
          return truncate([info.brand, info.model].filter(Boolean).join(' ').trim(), MAX_DEVICE_CHARS);
        }
      }
    } catch (e) {
      // not available on this platform
    }
  }
  return '';
}

function truncate(s, n) {
  var chars = Array.from(s);
  return chars.length > n ? chars.slice(0, n).join('') : s;
}

function errMsg(e) {
  if (!e) {
    return 'no answer';
  }
  return e.errMsg || e.message || String(e);
}

function noop() {}

module.exports = {
  createClient: createClient,
  WxLoginError: WxLoginError,
  SessionKeyStaleError: SessionKeyStaleError,
  fromUni: fromUni,
  fromTaro: fromTaro,
};
