// Package emulator imitates WeChat's server for development and tests. It
// speaks WeChat's real wire protocol on WeChat's paths — errors at HTTP 200
// with errcode/errmsg ending in a rid, JSON sent as text/plain with "/"
// escaped as "\/" — so that a client (ours or a third-party SDK) pointed at
// it cannot tell the difference:
//
//	GET  /sns/jscode2session             mini programs: code → openid, session_key (unionid)
//	GET  /sns/oauth2/access_token        OAuth apps: code → user token, openid (unionid)
//	GET  /sns/userinfo                   OAuth apps: the profile an snsapi_userinfo token reads
//	GET  /cgi-bin/token                  access token; each fetch retires the app's older ones after 5 minutes
//	POST /cgi-bin/stable_token           access token, the same one until 5 minutes before expiry
//	POST /wxa/business/getuserphonenumber phone number by code
//	GET  /wxa/checksession               is this the user's current session_key?
//	GET  /wxa/resetusersessionkey        issue a new session_key
//
// It serves every configured WeChat app at once: each accepts its own
// (appid, secret), keeps its own users, codes and access tokens, and a code
// is valid only for the app it was made for.
//
// Next to them it serves a development-only device API, standing in for the
// phone (JSON in, JSON out, errors as 400 {"error":{"code","message"}}):
//
//	POST   /emulator/login     what wx.login (or an OAuth redirect) gives a device: a code (and, for tests, openid, session_key)
//	POST   /emulator/userinfo  what wx.getUserInfo gives: raw_data, signature, encrypted_data, iv
//	POST   /emulator/phone     what the phone-number button gives: a code and encrypted_data, iv
//	POST   /emulator/faults    make the next calls of a WeChat path fail (errcode, HTTP status, delay)
//	DELETE /emulator/faults    clear pending faults (GET lists them)
//	GET    /emulator/stats     calls received per WeChat path
//	POST   /emulator/push      WeChat pushing an event to the service (user-authorization events), signed and encrypted with the app's push_token/push_aes_key
//
// Each takes an optional "appid" (default: the first app). The same
// operations are methods of [*Emulator] ([Emulator.Login],
// [Emulator.UserInfo], [Emulator.Phone], [Emulator.AddFault],
// [Emulator.Calls]). State lives in memory behind one mutex; time comes from
// an injectable clock ([WithClock]) so tests can expire codes and tokens
// without sleeping.
//
// [Module] runs the emulator in-process on config.WeChat.EmulatorAddr when
// config.WeChat.Emulator is set (binding in OnStart, so a taken port stops
// start-up) and provides the *Emulator. Nothing in it is meant to be
// replaced: an application that wants another emulator leaves [Module] out.
// Tests use [NewTestServer]; `go run ./app emulator` uses [Serve].
//
// It never logs AppSecrets, session keys, codes or access tokens.
package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/emukit"
)

// The WeChat paths the emulator serves.
const (
	PathCode2Session    = "/sns/jscode2session"
	PathOAuthToken      = "/sns/oauth2/access_token"
	PathOAuthUserInfo   = "/sns/userinfo"
	PathToken           = "/cgi-bin/token"
	PathStableToken     = "/cgi-bin/stable_token"
	PathPhoneNumber     = "/wxa/business/getuserphonenumber"
	PathCheckSession    = "/wxa/checksession"
	PathResetSessionKey = "/wxa/resetusersessionkey"
)

// WeChatPaths lists the WeChat paths, in the order of the table above.
var WeChatPaths = []string{
	PathCode2Session, PathOAuthToken, PathOAuthUserInfo, PathToken, PathStableToken,
	PathPhoneNumber, PathCheckSession, PathResetSessionKey,
}

// Lifetimes and limits of the real service.
const (
	// CodeTTL is how long a wx.login code, an OAuth code or a phone code stays valid.
	CodeTTL = 5 * time.Minute
	// TokenTTL is an access token's lifetime (expires_in 7200), and an OAuth user token's.
	TokenTTL = 2 * time.Hour
	// TokenGrace is how long a superseded access token keeps working, and
	// how early stable_token starts handing out a new one.
	TokenGrace = 5 * time.Minute
	// MinuteQuota is how many code2Session calls one user may cause per minute.
	MinuteQuota = 100
)

// OAuth scopes.
const (
	ScopeBase     = "snsapi_base"
	ScopeUserInfo = "snsapi_userinfo"
)

// Emulator is an in-memory WeChat server. It is safe for concurrent use.
type Emulator struct {
	apps  map[string]*app // by appid
	order []string        // appids in configuration order; the first is the default
	now   func() time.Time
	log   *zap.Logger
	mux   *http.ServeMux

	mu          sync.Mutex
	codes       map[string]*loginCode // wx.login and OAuth codes
	phoneCodes  map[string]*phoneCode
	tokens      map[string]*accessToken // every app's access tokens
	oauthTokens map[string]*oauthToken  // users' OAuth tokens
	wire        *emukit.Wire            // the WeChat paths' calls and faults
	lastSweep   time.Time

	srvMu sync.Mutex
	srv   *http.Server
	addr  string

	mountedMu sync.Mutex
	mounted   []string

	// pushBase is the service's public URL (WithPushURL).
	pushBase   string
	pushClient *http.Client
}

// app is one WeChat app's state.
type app struct {
	cfg    config.App
	users  map[string]*user // by openid
	stable *accessToken     // the current stable_token
}

type user struct {
	openID, unionID string
	sessionKey      string
	// nickname and avatarURL are what /sns/userinfo tells of an OAuth user.
	nickname, avatarURL string
	quotaMinute         int64 // the minute quotaCalls counts in
	quotaCalls          int
}

type loginCode struct {
	appID, openID string
	// unionID is what the exchange returns: only what the device call gave.
	unionID string
	// scope and snapshot describe an OAuth code.
	scope    string
	snapshot bool
	issued   time.Time
	used     bool
}

type phoneCode struct {
	appID                   string
	countryCode, pure, full string
	issued                  time.Time
	used                    bool
}

type accessToken struct {
	appID   string
	value   string
	stable  bool
	expires time.Time
	// retired is when a superseded token stops working (zero: not superseded).
	retired time.Time
}

type oauthToken struct {
	appID, openID, unionID string
	scope                  string
	snapshot               bool
	expires                time.Time
}

// Option configures an Emulator.
type Option func(*Emulator)

// WithClock makes the emulator read the time from now, for tests that
// expire codes and tokens without sleeping. Injected delays (faults) still
// take real time.
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.now = now } }

// WithLogger makes the emulator log its calls (at debug level) and its
// start and stop to l. The default logs nothing.
func WithLogger(l *zap.Logger) Option { return func(e *Emulator) { e.log = l } }

// New returns an emulator that serves the WeChat apps of apps, each with
// its own appid and secret; with none, the development app
// (config.DevAppID, config.DevSecret). Serve its [Emulator.Handler]
// yourself or call [Emulator.Start].
func New(apps config.Apps, opts ...Option) *Emulator {
	e := &Emulator{
		apps:        map[string]*app{},
		now:         time.Now,
		log:         zap.NewNop(),
		codes:       map[string]*loginCode{},
		phoneCodes:  map[string]*phoneCode{},
		tokens:      map[string]*accessToken{},
		oauthTokens: map[string]*oauthToken{},
		wire:        emukit.NewWire(WeChatPaths...),
		pushClient:  &http.Client{Timeout: pushTimeout},
	}
	wechat := apps.Of(config.PlatformWeChat)
	if len(wechat) == 0 {
		wechat = config.Apps{{Platform: config.PlatformWeChat, AppID: config.DevAppID, Secret: config.DevSecret, Kind: config.KindMiniProgram}}
	}
	for _, a := range wechat {
		if a.Kind == "" {
			a.Kind = config.KindMiniProgram
		}
		if _, dup := e.apps[a.AppID]; dup || a.AppID == "" {
			continue
		}
		e.apps[a.AppID] = &app{cfg: a, users: map[string]*user{}}
		e.order = append(e.order, a.AppID)
	}
	for _, o := range opts {
		o(e)
	}
	e.mux = e.routes()
	return e
}

// SingleApp is the app list of one mini program, for NewTestServer and New.
func SingleApp(appid, secret string) config.Apps {
	return config.Apps{{Platform: config.PlatformWeChat, AppID: appid, Secret: secret, Kind: config.KindMiniProgram}}
}

// AppID returns the default app's appid (the first configured).
func (e *Emulator) AppID() string { return e.order[0] }

// AppIDs lists the apps the emulator serves, in configuration order.
func (e *Emulator) AppIDs() []string { return append([]string(nil), e.order...) }

// Handler returns the emulator's HTTP handler (WeChat paths and device API).
func (e *Emulator) Handler() http.Handler { return e.mux }

func (e *Emulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(PathCode2Session, e.wechat(PathCode2Session, e.code2Session))
	mux.Handle(PathOAuthToken, e.wechat(PathOAuthToken, e.oauthAccessToken))
	mux.Handle(PathOAuthUserInfo, e.wechat(PathOAuthUserInfo, e.oauthUserInfo))
	mux.Handle(PathToken, e.wechat(PathToken, e.token))
	mux.Handle(PathStableToken, e.wechat(PathStableToken, e.stableToken))
	mux.Handle(PathPhoneNumber, e.wechat(PathPhoneNumber, e.phoneNumber))
	mux.Handle(PathCheckSession, e.wechat(PathCheckSession, e.checkSession))
	mux.Handle(PathResetSessionKey, e.wechat(PathResetSessionKey, e.resetSessionKey))

	mux.Handle("/emulator/login", emukit.Device(http.MethodPost, e.handleLogin))
	mux.Handle("/emulator/userinfo", emukit.Device(http.MethodPost, e.handleUserInfo))
	mux.Handle("/emulator/phone", emukit.Device(http.MethodPost, e.handlePhone))
	mux.Handle("/emulator/faults", emukit.Device("", e.handleFaults))
	mux.Handle("/emulator/stats", emukit.Device(http.MethodGet, e.handleStats))
	mux.Handle("/emulator/push", emukit.Device(http.MethodPost, e.handlePush))
	// The same device API under /emulator/wechat/, the shape every platform's has.
	mux.Handle("/emulator/wechat/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/emulator/" + strings.TrimPrefix(r.URL.Path, "/emulator/wechat/")
		r2.URL.RawPath = ""
		mux.ServeHTTP(w, r2)
	}))
	mux.Handle("/emulator/", emukit.Device("", func(*http.Request) (any, error) {
		return nil, &InputError{Status: http.StatusNotFound, Code: "not_found",
			Message: "no such device API; see /emulator/login, /emulator/userinfo, /emulator/phone, /emulator/push, /emulator/faults, /emulator/stats"}
	}))
	return mux
}

// sweep forgets codes and tokens long past any use; e.mu must be held.
func (e *Emulator) sweep(now time.Time) {
	if now.Sub(e.lastSweep) < time.Minute {
		return
	}
	e.lastSweep = now
	for k, c := range e.codes {
		if now.Sub(c.issued) > 2*CodeTTL {
			delete(e.codes, k)
		}
	}
	for k, c := range e.phoneCodes {
		if now.Sub(c.issued) > 2*CodeTTL {
			delete(e.phoneCodes, k)
		}
	}
	for k, t := range e.tokens {
		// Expired tokens answer 42001 for a day, then 40001.
		if now.Sub(t.expires) > 24*time.Hour {
			delete(e.tokens, k)
		}
	}
	for k, t := range e.oauthTokens {
		if now.Sub(t.expires) > 24*time.Hour {
			delete(e.oauthTokens, k)
		}
	}
}

const (
	alnum    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	urlAlpha = alnum + "-_"
)

// randomString returns n characters of alphabet from crypto/rand.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newOpenID looks like WeChat's: 28 characters starting with "o".
func newOpenID() string { return "o" + randomString(urlAlpha, 27) }

// newCode looks like a wx.login code: 32 alphanumerics.
func newCode() string { return randomString(alnum, 32) }

// newAccessToken looks like WeChat's: a number, "_", then ~130 characters.
func newAccessToken() string { return "86_" + randomString(urlAlpha, 133) }

// newRID is a request id like WeChat's: hex seconds, then two random groups.
func newRID(now time.Time) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%08x-%s-%s", uint32(now.Unix()), hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:]))
}
