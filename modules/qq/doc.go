// Package qq logs people in with QQ mini programs: the device's qq.login
// code is exchanged at QQ's jscode2session, whose wire copies WeChat's
// (GET https://api.q.qq.com/sns/jscode2session?appid&secret&js_code&grant_type=authorization_code
// → {openid, session_key, unionid?} or {errcode, errmsg}). It also fetches
// the app's server access token (GET /api/getToken) through the
// fleet-wide platformtoken.Manager, for other QQ server APIs.
//
// One [HTTPClient] serves every QQ app of config.Apps (entries with
// "platform":"qq", "appid" and "secret"; "base_url" overrides
// https://api.q.qq.com). TLS is always verified, redirects are never
// followed, bodies are capped at [MaxResponseBytes] and every call is bounded
// by a timeout. One log line per call (appid, path, status, errcode, kind,
// duration) — never the query string. The AppSecret, session keys, codes and
// access tokens never appear in errors or logs; [Session.SessionKey] is a
// provider.Secret.
//
// # Identity
//
// [Provider.Login] gives a provider.Identity with Provider "qq", the app's
// Kind, AppID, OpenID, SessionKey, and UnionID when QQ sends one. A unionid
// is shared by the apps of one QQ Connect (QQ互联) developer account only:
// it never links to another platform. QQ offers no phone number
// ([Provider.Phone] fails with provider.KindUnsupported).
//
// # Errors
//
// Every error implements provider.Classifier (platform "qq"):
//
//	provider.Kind      errcodes / causes
//	KindInvalidCode    40029 (invalid, used or expired code), 40163 [U], 41008 (empty code, not sent)
//	KindRateLimited    45011 (100 calls per user per minute), 45009; HTTP 429
//	KindUnavailable    -1 (busy); timeouts, network failures, unusable answers
//	KindMisconfigured  40001 (wrong secret, getToken), 40013 (unknown appid), 40002, 40125/41002/41004 [U];
//	                   an appid that is not a configured QQ app
//	KindUnknown        any other errcode
//
// An errcode answer is an [*Error]; no answer is a [*TransportError]; an
// answer that cannot be used is a [*ResponseError].
//
// # fx
//
// [Module] provides [Client] (an [*HTTPClient]) and adds [*Provider] to the
// "providers" group; it needs config.Apps and a platformtoken.Store
// (platformtoken.Module). An application replaces the client with
// fx.Decorate(func(qq.Client) qq.Client { … }). Without fx, [NewClient] and
// [NewProvider] build the same. The emulator of QQ's wire is qq/qqemu.
package qq
