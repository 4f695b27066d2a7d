// Type declarations for wxlogin.js, the wxlogin mini-program client.
// Served next to it at GET /sdk/wxlogin.d.ts.

/** The platform API the client uses: the mini program's `wx`, or fromUni/fromTaro. */
export interface WxLike {
  login(options: { timeout?: number; success(res: { code: string; errMsg?: string }): void; fail(err: { errMsg?: string }): void }): unknown;
  request(options: {
    url: string;
    method?: string;
    data?: unknown;
    header?: Record<string, string>;
    timeout?: number;
    success(res: { statusCode: number; data: unknown; header: Record<string, string> }): void;
    fail(err: { errMsg?: string }): void;
    [option: string]: unknown;
  }): unknown;
  getStorageSync(key: string): any;
  setStorageSync(key: string, value: any): void;
  removeStorageSync(key: string): void;
  getAccountInfoSync?(): { miniProgram: { appId: string } };
  getDeviceInfo?(): { brand?: string; model?: string };
  getSystemInfoSync?(): { brand?: string; model?: string };
}

export interface ClientOptions {
  /** The service's root, e.g. "https://api.example.com"; the token is sent nowhere else. */
  baseURL: string;
  /** The mini program's AppID; default wx.getAccountInfoSync().miniProgram.appId. */
  appid?: string;
  /** Default: the global `wx`. uni-app: fromUni(uni); Taro: fromTaro(Taro). */
  wx?: WxLike;
  /** The kind of client sent at login; default "miniprogram". */
  client?: 'miniprogram' | 'h5' | 'app' | 'web' | string;
  /** The device's name sent at login (≤ 64 characters); default brand and model. */
  device?: string;
  /** Log in on the first request when there is no token; default true. */
  autoLogin?: boolean;
  /** Timeout of every wx.request and wx.login, in ms. */
  timeout?: number;
  /** Default "wxlogin:" + baseURL + "#" + appid. */
  storageKey?: string;
}

export interface RequestOptions {
  /** A path under baseURL ("/api/v1/me") or an absolute URL starting with baseURL. */
  url: string;
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS' | string;
  /** The body (sent as JSON), or the query for GET. */
  data?: unknown;
  header?: Record<string, string>;
  /** false: no token, no recovery. */
  auth?: boolean;
  timeout?: number;
  [option: string]: unknown;
}

export interface Response<T = any> {
  statusCode: number;
  data: T;
  header: Record<string, string>;
}

export interface Session {
  id: string;
  client: string;
  device: string;
  appid: string;
  created_at: string;
  last_seen_at: string;
  current: boolean;
}

export interface Client {
  /** wx.login and log in (a new session; the previous one is ended). Resolves with the user. */
  login(): Promise<any>;
  /** Log in only when no token is held. */
  ensureLogin(): Promise<void>;
  isLoggedIn(): boolean;
  /** A request with the bearer token; status ≥ 400 rejects with WxLoginError. */
  request<T = any>(options: RequestOptions): Promise<Response<T>>;
  /** End this session and forget the tokens; requests then need login(). */
  logout(): Promise<void>;
  /** End every session of the user and forget the tokens. */
  logoutAll(): Promise<void>;
  sessions(): Promise<Session[]>;
}

export declare class WxLoginError extends Error {
  constructor(message: string, fields?: { statusCode?: number; code?: string; reason?: string; data?: unknown; header?: Record<string, string> });
  name: 'WxLoginError' | 'SessionKeyStaleError';
  /** HTTP status; 0 when there was no answer. */
  statusCode: number;
  /**
   * The service's error code, or the client's own: "network_error", "http_error",
   * "wx_login_failed", "not_logged_in", "invalid_url".
   */
  code: string;
  /** Why a 401 "unauthenticated" happened ("expired", "replaced", "user_banned", …); "" when not given. */
  reason: string;
  data: unknown;
  header: Record<string, string>;
}

/** Open data no longer decrypts; the client has logged in again: ask the person for the data again. */
export declare class SessionKeyStaleError extends WxLoginError {
  name: 'SessionKeyStaleError';
  code: 'session_key_stale';
}

export declare function createClient(options: ClientOptions): Client;
export declare function fromUni(uni: any, options?: { provider?: string }): WxLike;
export declare function fromTaro(taro: any): WxLike;
