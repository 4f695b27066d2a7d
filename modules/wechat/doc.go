// Package wechat is the client of WeChat's Mini Program server APIs:
// code2Session, getPhoneNumber, checkSessionKey, resetUserSessionKey, and the
// access token those need, fetched once per expiry window for the whole fleet.
//
// # Wire handling
//
// Only the base URL is configurable (config.WeChat.BaseURL); TLS is always
// verified and redirects are never followed (a redirect would carry the
// AppSecret to another host). Every call is bounded by config.WeChat.Timeout.
// Bodies are decoded as JSON whatever their Content-Type says, up to
// [MaxResponseBytes]; errcode is checked on every answer, and the request id
// (rid) in errmsg is kept in [Error.RID] and in the log. One log line is
// written per call: path, HTTP status, errcode, rid, duration — never the
// query string. The AppSecret, session keys and access tokens never appear in
// errors, logs or fmt output ([SessionKey] and [Token] print as "[redacted]").
//
// # Errors
//
// An errcode answer is an [*Error]; [Error.Kind] (or [KindOf] for any error)
// classifies it:
//
//	Kind               errcodes                                   meaning
//	KindInvalidCode    40029, 40163, 41008;                       the wx.login / phone code is invalid, used, expired
//	                   40013 on getuserphonenumber                or missing: get a new code on the device
//	KindRateLimited    45011, 45009                               a quota was reached: slow down, retry later
//	KindBlocked        40226                                      WeChat flagged the user as high-risk
//	KindUnavailable    -1                                         WeChat is busy: retry later
//	KindMisconfigured  40013 (elsewhere), 40125, 41002, 41004,    AppID/AppSecret wrong or frozen, server IP not
//	                   40164, 40243, 40002, 89503                 whitelisted, admin confirmation pending: an operator must act
//	KindAccessToken    40001, 40014, 41001, 42001                 the access token was rejected (already re-read and retried once)
//	KindSessionKey     87007, 87009, 40097                        the session key is missing, expired or does not match
//	KindUnknown        anything else
//
// When no answer could be read — timeout, connection refused, DNS, TLS, a
// body that is empty, not JSON, too large, or a "success" missing its
// essential fields — the error is a [*TransportError] or a [*ResponseError].
// Both match errors.Is(err, [ErrUnavailable]) (a [*ResponseError] also
// matches [ErrBadResponse]), and [KindOf] returns KindUnavailable for them;
// an [*Error] with errcode -1 matches ErrUnavailable too. None of them
// contain a URL: net/http's *url.Error (which carries ?secret= and
// ?access_token=) is unwrapped and only the API path is named.
//
// For an obviously empty argument (an empty code, openid or session key) the
// client answers itself with the [*Error] WeChat would give (41008, or 40097
// for the session-key APIs) without calling WeChat.
//
// # Access tokens
//
// The client's [*platformtoken.Manager] keeps one token per AppID in the
// [platformtoken.Store] every platform shares: cached until five minutes
// before expiry, one fetch at a time per process (single-flight) and,
// through the store's lock, per fleet; the other instances poll the store
// for the token the lock holder stores. When a business API rejects a token
// (KindAccessToken), the token is deleted from the store only if it is still
// the one that failed (compare-and-delete), the store is read again (another
// instance may have refreshed it), and the call is retried once. A forced
// refresh (stable_token force_refresh) is never made. config.WeChat.StableToken
// selects POST /cgi-bin/stable_token (the default) or the classic GET
// /cgi-bin/token. Other code that calls other WeChat APIs uses
// [HTTPClient.Tokens]().Do to get the same re-read-and-retry-once.
//
// If the store fails (Redis down), the manager logs a warning and fetches
// without it, so logins keep working; with stable_token, instances then still
// share one token.
//
// # fx
//
// [Module] provides [Client] and its [*platformtoken.Manager]; it takes the
// [platformtoken.Store] from platformtoken.Module (a Redis store when the
// graph holds Redis, else memory), which the application lists once for all
// platforms. An application replaces
//
//   - the store:  fx.Decorate(func(platformtoken.Store) platformtoken.Store { return myStore })
//   - the client: fx.Decorate(func(c wechat.Client) wechat.Client { return myClient{c} })
//
// (fx.Decorate at the root of fx.New applies inside this module too). It
// takes, when the graph holds them, an [Observer] and a platformtoken.Observer
// (modules/metrics: calls by appid, path and errcode; access-token fetches)
// and a trace.TracerProvider (modules/tracing: a client span per call, named
// after the path, without the query string). Without fx, [NewClient] builds
// the same client from a config.WeChat and [Option]s.
package wechat
