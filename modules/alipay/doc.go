// Package alipay logs people in with Alipay mini programs: my.getAuthCode's
// authCode is exchanged at the open-platform gateway's
// alipay.system.oauth.token (POST https://openapi.alipay.com/gateway.do,
// form parameters signed RSA2 with the app's private key; the answer
// {"alipay_system_oauth_token_response":{…},"sign":"…"} signed by Alipay),
// and phone numbers come from my.getPhoneNumber's signed, AES-encrypted
// response. Alipay has no app access token: every call is signed instead.
//
// # Configuration
//
// One [HTTPClient] serves every Alipay app of config.Apps: entries with
// "platform":"alipay", "appid", "private_key" (the app's RSA2 private key,
// PEM or base64 DER, PKCS#1 or PKCS#8), "alipay_public_key" (PEM or base64
// DER; certificate mode is not supported), optionally "aes_key" (the
// console's AES key, for phone numbers) and "base_url" (default
// https://openapi.alipay.com; the sandbox is
// https://openapi-sandbox.dl.alipaydev.com). The keys are parsed at start.
//
// # Wire handling
//
// Requests carry app_id, method, format=JSON, charset=utf-8, sign_type=RSA2,
// a Beijing-time timestamp [U], version=1.0 and the method's parameters,
// signed over [SigningString] (every parameter but sign and the empty ones,
// sorted, k=v joined by &, raw values) and POSTed form-encoded. Answers are
// verified over the exact bytes of their response node — never
// re-serialized — with the app's alipay_public_key: an unsigned or badly
// signed success is refused ([*SignatureError]). An error_response is
// verified when signed and accepted unsigned (Alipay cannot sign for an app
// it does not know [U]). TLS is always verified, redirects are never
// followed, bodies are capped at [MaxResponseBytes], every call is bounded
// by a timeout, and one line is logged per call (appid, method, status,
// code, sub_code, kind, duration) — never the code, the user's tokens or
// any key.
//
// # Identity: open_id and user_id
//
// Alipay identifies a user by open_id (one per user and app: new apps, and
// apps switched in the console) or, for apps still in the legacy mode, by
// user_id (2088…, one per person across all of Alipay). Alipay says to store
// the identifier type with the id and never mix them. [Provider.Login] gives
// provider.Identity.OpenID = the open_id as Alipay sends it (preferred when
// both come), or "user_id:" + the user_id ([UserIDPrefix]). An open_id never
// contains ':' (an answer whose open_id does is refused), so the two kinds
// can never collide or be mistaken for each other; [SplitOpenID] tells them
// apart. When an app switches from user_id to open_id its users get new
// identities: linking them (Alipay's "存量 userid 转换 openid", [U]) is the
// user store's business. UnionID is Alipay's union_id when sent [S]: scoped
// to the developer account, never linking to another platform. There is no
// session key.
//
// # Errors
//
// Every error implements provider.Classifier (platform "alipay"):
//
//	provider.Kind      gateway code / sub_code / cause
//	KindInvalidCode    isv.code-invalid (invalid, used, expired or another app's code); an empty code (not sent)
//	KindRateLimited    40005 [S]; HTTP 429
//	KindUnavailable    20000, isp.*; timeouts, network failures, unusable answers
//	KindMisconfigured  40001, 40002 (isv.invalid-app-id, isv.invalid-signature, …), 20001, 40006,
//	                   isv.invalid-auth-relations; a signature that does not verify; an app
//	                   that is not configured, or has no aes_key for phone numbers
//	KindRefused        phone data whose signature does not verify (ErrBadSignature)
//	KindUnknown        anything else (40003, 40004 with other sub_codes)
//
// # fx
//
// [Module] provides [Client] (an [*HTTPClient]) and adds [*Provider] to the
// "providers" group; it needs config.Apps. An application replaces the
// client with fx.Decorate(func(alipay.Client) alipay.Client { … }). Without
// fx, [NewClient] and [NewProvider] build the same. The emulator of the
// gateway is alipay/alipayemu.
package alipay
