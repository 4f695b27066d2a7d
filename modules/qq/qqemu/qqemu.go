// Package qqemu imitates QQ's mini-program server for development and
// tests, on QQ's real wire: GET requests with query parameters, JSON
// answers, errors as {"errcode","errmsg"} at HTTP 200.
//
//	GET /sns/jscode2session   appid, secret, js_code, grant_type=authorization_code → openid, session_key (unionid)
//	GET /api/getToken         grant_type=client_credential, appid, secret → access_token, expires_in
//
// Codes are single use and live [CodeTTL] (unknown, used or expired → 40029);
// a user may cause [MinuteQuota] exchanges per minute (then 45011); an
// unknown appid is 40013; a wrong secret is 40125 on jscode2session [U] and
// 40001 on getToken. Each getToken fetch retires the app's earlier tokens
// after [TokenGrace].
//
// The development-only device API stands in for the phone (JSON in, JSON
// out, errors as {"error":{"code","message"}}):
//
//	POST   /emulator/login   {"appid"?, "openid"?, "unionid"?} → {"code","openid","unionid"?,"session_key"}
//	POST   /emulator/faults  {"path","errcode"?,"http_status"?,"body"?,"delay_ms"?,"count"}
//	DELETE /emulator/faults  clear; GET lists them
//	GET    /emulator/stats   {"calls":{path: n}}
//
// [Emulator.Handler] serves both at these paths; [Emulator.DeviceHandler]
// serves the device API alone at /login, /faults, /stats, so an application
// mounts the wire under /qq and the device API under /emulator/qq:
//
//	mux.Handle("/qq/", http.StripPrefix("/qq", emu.Handler()))
//	mux.Handle("/emulator/qq/", http.StripPrefix("/emulator/qq", emu.DeviceHandler()))
//
// and points the QQ apps' base_url at http://host/qq. The emulator accepts
// the QQ apps of the config.Apps it is built with, with their secrets. It
// never logs secrets, codes, session keys or tokens.
package qqemu

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/emukit"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
)

// The wire paths.
const (
	PathCode2Session = "/sns/jscode2session"
	PathToken        = "/api/getToken"
)

// Paths lists the wire paths.
var Paths = []string{PathCode2Session, PathToken}

// Lifetimes and limits of the real service.
const (
	// CodeTTL is how long a qq.login code stays valid. [U] QQ documents
	// single use, not a lifetime; this is WeChat's.
	CodeTTL = 5 * time.Minute
	// TokenTTL is an access token's lifetime (expires_in 7200).
	TokenTTL = 2 * time.Hour
	// TokenGrace is how long a superseded access token keeps working.
	TokenGrace = 5 * time.Minute
	// MinuteQuota is how many jscode2session calls one user may cause per minute.
	MinuteQuota = 100
)

// ContentType is what the emulator's wire answers carry. [U]
const ContentType = "application/json; charset=utf-8"

// Fault makes the next calls of a wire path fail; see emukit.Fault.
type Fault = emukit.Fault

// errmsgs are the texts for the errcodes the emulator answers. [U] QQ's
// exact wording.
var errmsgs = map[int]string{
	-1:    "system error",
	40001: "invalid credential",
	40002: "invalid grant_type",
	40013: "invalid appid",
	40029: "invalid code",
	40125: "invalid appsecret",
	41002: "appid missing",
	41004: "appsecret missing",
	41008: "missing code",
	45011: "api minute-quota reach limit, must slower, retry next minute",
}

// Emulator is an in-memory QQ server. It is safe for concurrent use.
type Emulator struct {
	secrets map[string]string // appid → secret
	appids  []string
	now     func() time.Time
	log     *zap.Logger
	wire    *emukit.Wire
	mux     *http.ServeMux
	device  *http.ServeMux

	mu        sync.Mutex
	lastSweep time.Time
	users     map[userKey]*user
	codes     map[string]*loginCode
	tokens    map[string]*accessToken
}

type userKey struct{ appid, openid string }

type user struct {
	unionID, sessionKey string
	quotaMinute         int64
	quotaCalls          int
}

type loginCode struct {
	appid, openid string
	issued        time.Time
	used          bool
}

type accessToken struct {
	appid   string
	expires time.Time
	retired time.Time // zero: current
}

// Option configures an Emulator.
type Option func(*Emulator)

// WithClock makes the emulator read the time from now (tests expire codes
// without sleeping; injected delays still take real time).
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.now = now } }

// WithLogger makes the emulator log its calls at debug level.
func WithLogger(l *zap.Logger) Option { return func(e *Emulator) { e.log = l } }

// New returns an emulator that accepts the QQ apps among apps.
func New(apps config.Apps, opts ...Option) *Emulator {
	e := &Emulator{
		secrets: map[string]string{},
		now:     time.Now,
		log:     zap.NewNop(),
		wire:    emukit.NewWire(Paths...),
		users:   map[userKey]*user{},
		codes:   map[string]*loginCode{},
		tokens:  map[string]*accessToken{},
	}
	for _, a := range apps.Of(config.PlatformQQ) {
		e.secrets[a.AppID] = a.Secret
		e.appids = append(e.appids, a.AppID)
	}
	for _, o := range opts {
		o(e)
	}
	e.device = emukit.DeviceMux(e.wire, e.handleLogin)
	e.mux = http.NewServeMux()
	e.mux.Handle(PathCode2Session, e.wire.Handle(PathCode2Session, ContentType, e.writeFault, e.code2Session))
	e.mux.Handle(PathToken, e.wire.Handle(PathToken, ContentType, e.writeFault, e.token))
	e.mux.Handle("/emulator/", http.StripPrefix("/emulator", e.device))
	return e
}

// Handler serves the wire paths and the device API under /emulator/.
func (e *Emulator) Handler() http.Handler { return e.mux }

// DeviceHandler serves the device API at /login, /faults and /stats.
func (e *Emulator) DeviceHandler() http.Handler { return e.device }

// AddFault queues a fault of a wire path.
func (e *Emulator) AddFault(f Fault) error { return e.wire.AddFault(f) }

// ClearFaults drops the pending faults.
func (e *Emulator) ClearFaults() int { return e.wire.ClearFaults() }

// Faults lists the pending faults.
func (e *Emulator) Faults() []Fault { return e.wire.Faults() }

// Calls returns the calls each wire path received.
func (e *Emulator) Calls() map[string]int { return e.wire.Calls() }

// LoginRequest is a device's qq.login. Every field is optional.
type LoginRequest struct {
	// AppID picks the app; optional when the emulator has one QQ app.
	AppID string `json:"appid,omitempty"`
	// OpenID picks the user; a new user when empty.
	OpenID string `json:"openid,omitempty"`
	// UnionID sets the user's unionid; empty keeps the current one.
	UnionID string `json:"unionid,omitempty"`
}

// LoginResponse is what qq.login gives the device (the code), plus what
// jscode2session will return for it, for tests.
type LoginResponse struct {
	Code       string `json:"code"`
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid,omitempty"`
	SessionKey string `json:"session_key"`
}

// Login performs a device's qq.login: it finds or creates the user, gives
// them a new session_key and issues a single-use code valid for CodeTTL.
func (e *Emulator) Login(req LoginRequest) (LoginResponse, error) {
	appid, err := emukit.PickApp(req.AppID, e.appids)
	if err != nil {
		return LoginResponse{}, err
	}
	if req.OpenID != "" && !emukit.ValidID(req.OpenID) {
		return LoginResponse{}, emukit.BadInput("invalid_openid", "openid must be 1 to 128 characters of A-Z a-z 0-9 - _")
	}
	if req.UnionID != "" && !emukit.ValidID(req.UnionID) {
		return LoginResponse{}, emukit.BadInput("invalid_unionid", "unionid must be 1 to 128 characters of A-Z a-z 0-9 - _")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.sweep(now)
	openid := req.OpenID
	if openid == "" {
		openid = emukit.RandomString("0123456789ABCDEF", 32) // QQ openids are 32 upper-case hex digits
	}
	k := userKey{appid, openid}
	u := e.users[k]
	if u == nil {
		u = &user{}
		e.users[k] = u
	}
	if req.UnionID != "" {
		u.unionID = req.UnionID
	}
	u.sessionKey = wxcrypto.NewSessionKey()
	code := emukit.RandomString(emukit.Alnum, 32)
	e.codes[code] = &loginCode{appid: appid, openid: openid, issued: now}
	return LoginResponse{Code: code, OpenID: openid, UnionID: u.unionID, SessionKey: u.sessionKey}, nil
}

// TokenValid reports whether token is a current access token of appid.
func (e *Emulator) TokenValid(appid, token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tokens[token]
	now := e.now()
	return ok && t.appid == appid && now.Before(t.expires) && (t.retired.IsZero() || now.Before(t.retired))
}

func (e *Emulator) handleLogin(r *http.Request) (any, error) {
	var req LoginRequest
	if err := emukit.Decode(r, &req); err != nil {
		return nil, err
	}
	return e.Login(req)
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
	for k, t := range e.tokens {
		if now.After(t.expires) {
			delete(e.tokens, k)
		}
	}
}

// checkApp checks the caller's appid and secret; wrongSecret is the
// endpoint's errcode for a wrong secret.
func (e *Emulator) checkApp(appid, secret string, wrongSecret int) int {
	want, known := e.secrets[appid]
	switch {
	case appid == "":
		return 41002
	case secret == "":
		return 41004
	case !known:
		return 40013
	case subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1:
		return wrongSecret
	}
	return 0
}

func (e *Emulator) code2Session(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if code := e.checkApp(q.Get("appid"), q.Get("secret"), 40125); code != 0 {
		e.writeError(w, PathCode2Session, code)
		return
	}
	if gt := q.Get("grant_type"); gt != "authorization_code" {
		e.writeError(w, PathCode2Session, 40002)
		return
	}
	jsCode := q.Get("js_code")
	if jsCode == "" {
		e.writeError(w, PathCode2Session, 41008)
		return
	}
	e.mu.Lock()
	now := e.now()
	c := e.codes[jsCode]
	if c == nil || c.appid != q.Get("appid") {
		e.mu.Unlock()
		e.writeError(w, PathCode2Session, 40029)
		return
	}
	u := e.users[userKey{c.appid, c.openid}]
	if minute := now.Unix() / 60; u.quotaMinute != minute {
		u.quotaMinute, u.quotaCalls = minute, 0
	}
	if u.quotaCalls >= MinuteQuota {
		e.mu.Unlock()
		e.writeError(w, PathCode2Session, 45011)
		return
	}
	u.quotaCalls++
	// [U] QQ documents single use but no errcode for a used or expired
	// code; it answers the documented 40029 (WeChat would say 40163).
	if c.used || !now.Before(c.issued.Add(CodeTTL)) {
		e.mu.Unlock()
		e.writeError(w, PathCode2Session, 40029)
		return
	}
	c.used = true
	body := struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
		UnionID    string `json:"unionid,omitempty"`
	}{c.openid, u.sessionKey, u.unionID}
	e.mu.Unlock()
	e.log.Debug("qq emulator call", zap.String("path", PathCode2Session), zap.Int("errcode", 0))
	writeJSON(w, body)
}

func (e *Emulator) token(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("grant_type") != "client_credential" {
		e.writeError(w, PathToken, 40002)
		return
	}
	appid := q.Get("appid")
	if code := e.checkApp(appid, q.Get("secret"), 40001); code != 0 {
		e.writeError(w, PathToken, code)
		return
	}
	e.mu.Lock()
	now := e.now()
	e.sweep(now)
	for _, t := range e.tokens {
		if t.appid == appid && t.retired.IsZero() {
			t.retired = now.Add(TokenGrace)
		}
	}
	tok := emukit.RandomString(emukit.URLAlpha, 64)
	e.tokens[tok] = &accessToken{appid: appid, expires: now.Add(TokenTTL)}
	e.mu.Unlock()
	e.log.Debug("qq emulator call", zap.String("path", PathToken), zap.Int("errcode", 0))
	writeJSON(w, struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}{tok, int(TokenTTL / time.Second)})
}

func (e *Emulator) writeFault(w http.ResponseWriter, r *http.Request, f Fault) {
	e.writeError(w, r.URL.Path, f.ErrCode)
}

func (e *Emulator) writeError(w http.ResponseWriter, path string, code int) {
	msg, ok := errmsgs[code]
	if !ok {
		msg = fmt.Sprintf("injected fault %d", code)
	}
	e.log.Debug("qq emulator call", zap.String("path", path), zap.Int("errcode", code))
	writeJSON(w, struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}{code, msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
