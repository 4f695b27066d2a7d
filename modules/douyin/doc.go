// Package douyin logs people in with Douyin (ByteDance: Douyin, Toutiao, …)
// mini programs: tt.login's code and/or anonymousCode are exchanged at the
// v2 jscode2session (POST https://developer.toutiao.com/api/apps/v2/jscode2session,
// JSON {appid, secret, code, anonymous_code} → {err_no, err_tips, log_id,
// data:{session_key, openid, anonymous_openid, unionid}}). It also fetches
// the app's server access token (POST /api/apps/v2/token) through the
// fleet-wide platformtoken.Manager, for other Douyin server APIs.
//
// One [HTTPClient] serves every Douyin app of config.Apps (entries with
// "platform":"douyin", "appid" and "secret"; "base_url" overrides
// https://developer.toutiao.com, e.g. the sandbox https://open-sandbox.douyin.com).
// TLS is always verified, redirects are never followed, bodies are capped at
// [MaxResponseBytes] and every call is bounded by a timeout. One log line
// per call (appid, path, status, err_no, log_id, kind, duration). The
// AppSecret (sent in the JSON body), session keys and access tokens never
// appear in errors or logs.
//
// # Identity
//
// [Provider.Login] gives a provider.Identity with Provider "douyin", the
// app's Kind and AppID and, for a code, OpenID, UnionID and SessionKey; for
// an anonymous code, AnonymousOpenID (one per device). A device logged in to
// Douyin sends both codes and gets both; a device that is not sends only the
// anonymous code, and the identity has an empty OpenID — the login flow keys
// it by AnonymousOpenID. A unionid is scoped to the developer account and
// the host app: it differs between Douyin and Toutiao for one person, and
// never links to another platform.
//
// [Provider.Phone] decrypts the legacy getPhoneNumber data (encrypted_data,
// iv) with the session key, as on WeChat [D]; the newer one-time phone code
// is provider.KindUnsupported ([U]: its OpenAPI URL and answer were not
// confirmed).
//
// # Errors
//
// Every error implements provider.Classifier (platform "douyin"):
//
//	provider.Kind      err_no / causes
//	KindInvalidCode    40018 (bad code: invalid, used, expired), 40019 (bad anonymous_code),
//	                   40014 (bad parameters; also local, for no code at all)
//	KindRateLimited    HTTP 429 ([U]: no rate-limit err_no is documented)
//	KindUnavailable    -1; timeouts, network failures, unusable answers
//	KindMisconfigured  40015 (appid), 40017 (secret), 40020 (grant_type); an appid that is not
//	                   a configured Douyin app
//	KindUnknown        any other err_no
//
// An err_no answer is an [*Error] (with Douyin's log_id); no answer is a
// [*TransportError]; an answer that cannot be used is a [*ResponseError].
//
// # fx
//
// [Module] provides [Client] (an [*HTTPClient]) and adds [*Provider] to the
// "providers" group; it needs config.Apps and a platformtoken.Store
// (platformtoken.Module). An application replaces the client with
// fx.Decorate(func(douyin.Client) douyin.Client { … }). Without fx,
// [NewClient] and [NewProvider] build the same. The emulator of Douyin's
// wire is douyin/douyinemu.
package douyin
