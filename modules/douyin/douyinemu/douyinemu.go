// Package douyinemu imitates Douyin's mini-program server for development
// and tests, on Douyin's real wire: POST with JSON bodies, answers
// {"err_no","err_tips","log_id","data"} at HTTP 200.
//
//	POST /api/apps/v2/jscode2session  {appid, secret, code?, anonymous_code?} → data {session_key, openid, anonymous_openid, unionid}
//	POST /api/apps/v2/token           {appid, secret, grant_type: client_credential} → data {access_token, expires_in}
//
// Codes and anonymous codes are single use and live [CodeTTL]; a bad code is
// 40018, a bad anonymous code 40019, neither 40014, an unknown appid 40015, a
// wrong secret 40017, a wrong grant_type 40020. With a code, data holds
// openid, unionid and session_key; with an anonymous code, anonymous_openid;
// the other fields are empty strings [U]. Each token fetch cuts the app's
// earlier tokens to [TokenGrace].
//
// The development-only device API stands in for the phone (JSON in, JSON
// out, errors as {"error":{"code","message"}}):
//
//	POST   /emulator/login   {"appid"?, "openid"?, "unionid"?, "device"?, "anonymous"?}
//	                         → {"code"?, "anonymous_code", "openid"?, "anonymous_openid", "unionid"?, "session_key"?}
//	POST   /emulator/phone   {"appid"?, "openid", "phone", "country_code"?} → {"encrypted_data","iv"} (legacy getPhoneNumber)
//	POST   /emulator/faults  {"path","errcode"? (err_no),"http_status"?,"body"?,"delay_ms"?,"count"}
//	DELETE /emulator/faults  clear; GET lists them
//	GET    /emulator/stats   {"calls":{path: n}}
//
// tt.login on a device logged in to Douyin gives both codes; "anonymous":
// true plays a device that is not (only anonymous_code, no openid). "device"
// names the device, which fixes its anonymous_openid (default: a new device
// each call).
//
// [Emulator.Handler] serves the wire and the device API under /emulator/;
// [Emulator.DeviceHandler] serves the device API alone at /login, /phone,
// /faults, /stats:
//
//	mux.Handle("/douyin/", http.StripPrefix("/douyin", emu.Handler()))
//	mux.Handle("/emulator/douyin/", http.StripPrefix("/emulator/douyin", emu.DeviceHandler()))
//
// The emulator accepts the Douyin apps of the config.Apps it is built with.
// It never logs secrets, codes, session keys or tokens.
package douyinemu

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
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
	PathCode2Session = "/api/apps/v2/jscode2session"
	PathToken        = "/api/apps/v2/token"
)

// Paths lists the wire paths.
var Paths = []string{PathCode2Session, PathToken}

// Lifetimes of the real service.
const (
	// CodeTTL is how long a code or anonymous code stays valid: 5 minutes
	// per the current doc (an older page says 3) [D].
	CodeTTL = 5 * time.Minute
	// TokenTTL is an access token's lifetime (2 hours) [D].
	TokenTTL = 2 * time.Hour
	// TokenGrace is what is left of a token's life once a new one is fetched [D].
	TokenGrace = 5 * time.Minute
)

// ContentType is what the emulator's wire answers carry. [U]
const ContentType = "application/json; charset=utf-8"

// Fault makes the next calls of a wire path fail; its ErrCode is an err_no.
type Fault = emukit.Fault

// errTips are the texts for the err_nos the emulator answers. [U] wording.
var errTips = map[int]string{
	-1:    "system error",
	40014: "bad params",
	40015: "bad appid",
	40017: "bad secret",
	40018: "bad code",
	40019: "bad anonymous_code",
	40020: "bad grant_type",
}

// Emulator is an in-memory Douyin server. It is safe for concurrent use.
type Emulator struct {
	secrets map[string]string
	appids  []string
	now     func() time.Time
	log     *zap.Logger
	wire    *emukit.Wire
	mux     *http.ServeMux
	device  *http.ServeMux

	mu        sync.Mutex
	lastSweep time.Time
	users     map[key]*user  // (appid, openid)
	devices   map[key]string // (appid, device) → anonymous_openid
	codes     map[string]*loginCode
	anonCodes map[string]*loginCode
	tokens    map[string]*accessToken
}

type key struct{ appid, id string }

type user struct{ unionID, sessionKey string }

type loginCode struct {
	appid, id string // openid, or anonymous_openid for anonymous codes
	issued    time.Time
	used      bool
}

type accessToken struct {
	appid   string
	expires time.Time
}

// Option configures an Emulator.
type Option func(*Emulator)

// WithClock makes the emulator read the time from now.
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.now = now } }

// WithLogger makes the emulator log its calls at debug level.
func WithLogger(l *zap.Logger) Option { return func(e *Emulator) { e.log = l } }

// New returns an emulator that accepts the Douyin apps among apps.
func New(apps config.Apps, opts ...Option) *Emulator {
	e := &Emulator{
		secrets:   map[string]string{},
		now:       time.Now,
		log:       zap.NewNop(),
		wire:      emukit.NewWire(Paths...),
		users:     map[key]*user{},
		devices:   map[key]string{},
		codes:     map[string]*loginCode{},
		anonCodes: map[string]*loginCode{},
		tokens:    map[string]*accessToken{},
	}
	for _, a := range apps.Of(config.PlatformDouyin) {
		e.secrets[a.AppID] = a.Secret
		e.appids = append(e.appids, a.AppID)
	}
	for _, o := range opts {
		o(e)
	}
	e.device = emukit.DeviceMux(e.wire, e.handleLogin)
	e.device.Handle("/phone", emukit.Device(http.MethodPost, e.handlePhone))
	e.mux = http.NewServeMux()
	e.mux.Handle(PathCode2Session, e.wire.Handle(PathCode2Session, ContentType, e.writeFault, e.code2Session))
	e.mux.Handle(PathToken, e.wire.Handle(PathToken, ContentType, e.writeFault, e.token))
	e.mux.Handle("/emulator/", http.StripPrefix("/emulator", e.device))
	return e
}

// Handler serves the wire paths and the device API under /emulator/.
func (e *Emulator) Handler() http.Handler { return e.mux }

// DeviceHandler serves the device API at /login, /phone, /faults, /stats.
func (e *Emulator) DeviceHandler() http.Handler { return e.device }

// AddFault queues a fault of a wire path.
func (e *Emulator) AddFault(f Fault) error { return e.wire.AddFault(f) }

// ClearFaults drops the pending faults.
func (e *Emulator) ClearFaults() int { return e.wire.ClearFaults() }

// Faults lists the pending faults.
func (e *Emulator) Faults() []Fault { return e.wire.Faults() }

// Calls returns the calls each wire path received.
func (e *Emulator) Calls() map[string]int { return e.wire.Calls() }

// LoginRequest is a device's tt.login. Every field is optional.
type LoginRequest struct {
	// AppID picks the app; optional when the emulator has one Douyin app.
	AppID string `json:"appid,omitempty"`
	// OpenID picks the Douyin user; a new user when empty.
	OpenID string `json:"openid,omitempty"`
	// UnionID sets the user's unionid; empty keeps the current one.
	UnionID string `json:"unionid,omitempty"`
	// Device names the device, which fixes its anonymous_openid; a new
	// device when empty.
	Device string `json:"device,omitempty"`
	// Anonymous plays a device not logged in to Douyin: only an anonymous code.
	Anonymous bool `json:"anonymous,omitempty"`
}

// LoginResponse is what tt.login gives the device (the codes), plus what
// jscode2session will return for them, for tests.
type LoginResponse struct {
	Code            string `json:"code,omitempty"`
	AnonymousCode   string `json:"anonymous_code"`
	OpenID          string `json:"openid,omitempty"`
	AnonymousOpenID string `json:"anonymous_openid"`
	UnionID         string `json:"unionid,omitempty"`
	SessionKey      string `json:"session_key,omitempty"`
	// Device is the device the codes were made on.
	Device string `json:"device"`
}

// Login performs a device's tt.login: an anonymous code always, and for a
// device logged in to Douyin a code too, with a new session_key for the user.
func (e *Emulator) Login(req LoginRequest) (LoginResponse, error) {
	appid, err := emukit.PickApp(req.AppID, e.appids)
	if err != nil {
		return LoginResponse{}, err
	}
	for name, v := range map[string]string{"openid": req.OpenID, "unionid": req.UnionID, "device": req.Device} {
		if v != "" && !emukit.ValidID(v) {
			return LoginResponse{}, emukit.BadInput("invalid_"+name, "%s must be 1 to 128 characters of A-Z a-z 0-9 - _", name)
		}
	}
	if req.Anonymous && (req.OpenID != "" || req.UnionID != "") {
		return LoginResponse{}, emukit.BadInput("invalid_request", "an anonymous device (not logged in to Douyin) has no openid or unionid")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.sweep(now)
	dev := req.Device
	if dev == "" {
		dev = "device-" + emukit.RandomString(emukit.Alnum, 12)
	}
	anon, ok := e.devices[key{appid, dev}]
	if !ok {
		anon = "a" + emukit.RandomString(emukit.URLAlpha, 39)
		e.devices[key{appid, dev}] = anon
	}
	res := LoginResponse{AnonymousCode: emukit.RandomString(emukit.Alnum, 32), AnonymousOpenID: anon, Device: dev}
	e.anonCodes[res.AnonymousCode] = &loginCode{appid: appid, id: anon, issued: now}
	if req.Anonymous {
		return res, nil
	}
	openid := req.OpenID
	if openid == "" {
		openid = "_000" + emukit.RandomString(emukit.URLAlpha, 40)
	}
	u := e.users[key{appid, openid}]
	if u == nil {
		u = &user{}
		e.users[key{appid, openid}] = u
	}
	if req.UnionID != "" {
		u.unionID = req.UnionID
	}
	u.sessionKey = wxcrypto.NewSessionKey()
	res.Code = emukit.RandomString(emukit.Alnum, 32)
	e.codes[res.Code] = &loginCode{appid: appid, id: openid, issued: now}
	res.OpenID, res.UnionID, res.SessionKey = openid, u.unionID, u.sessionKey
	return res, nil
}

// PhoneRequest asks for what the legacy phone-number button gives a device.
type PhoneRequest struct {
	AppID  string `json:"appid,omitempty"`
	OpenID string `json:"openid"`
	// Phone is the number without country code, e.g. "13800000000".
	Phone string `json:"phone"`
	// CountryCode is "86" by default.
	CountryCode string `json:"country_code,omitempty"`
	// WatermarkAppID overrides the watermark's appid, to produce data made
	// for another app (which the server must refuse).
	WatermarkAppID string `json:"watermark_appid,omitempty"`
}

// PhoneResponse is the legacy phone-number button's answer.
type PhoneResponse struct {
	EncryptedData string `json:"encrypted_data"`
	IV            string `json:"iv"`
}

// Phone encrypts the phone number under the user's current session_key,
// with WeChat's plaintext shape [U].
func (e *Emulator) Phone(req PhoneRequest) (PhoneResponse, error) {
	appid, err := emukit.PickApp(req.AppID, e.appids)
	if err != nil {
		return PhoneResponse{}, err
	}
	cc := req.CountryCode
	if cc == "" {
		cc = "86"
	}
	if !digits(req.Phone, 4, 15) || !digits(cc, 1, 4) {
		return PhoneResponse{}, emukit.BadInput("invalid_phone", "phone must be 4 to 15 digits and country_code 1 to 4 digits")
	}
	e.mu.Lock()
	u := e.users[key{appid, req.OpenID}]
	var sk string
	if u != nil {
		sk = u.sessionKey
	}
	now := e.now()
	e.mu.Unlock()
	if u == nil {
		return PhoneResponse{}, emukit.BadInput("unknown_openid", "no user has this openid in this app; call /emulator/login first")
	}
	full := req.Phone
	if cc != "86" {
		full = "+" + cc + req.Phone
	}
	wm := req.WatermarkAppID
	if wm == "" {
		wm = appid
	}
	plain := emukit.CompactJSON(wxcrypto.PhoneInfo{PhoneNumber: full, PurePhoneNumber: req.Phone, CountryCode: wxcrypto.CountryCode(cc),
		Watermark: wxcrypto.Watermark{Timestamp: now.Unix(), AppID: wm}})
	data, iv, err := wxcrypto.Encrypt(sk, []byte(plain))
	if err != nil {
		return PhoneResponse{}, err
	}
	return PhoneResponse{EncryptedData: data, IV: iv}, nil
}

// TokenValid reports whether token is a current access token of appid.
func (e *Emulator) TokenValid(appid, token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tokens[token]
	return ok && t.appid == appid && e.now().Before(t.expires)
}

func (e *Emulator) handleLogin(r *http.Request) (any, error) {
	var req LoginRequest
	if err := emukit.Decode(r, &req); err != nil {
		return nil, err
	}
	return e.Login(req)
}

func (e *Emulator) handlePhone(r *http.Request) (any, error) {
	var req PhoneRequest
	if err := emukit.Decode(r, &req); err != nil {
		return nil, err
	}
	return e.Phone(req)
}

// sweep forgets codes and tokens long past any use; e.mu must be held.
func (e *Emulator) sweep(now time.Time) {
	if now.Sub(e.lastSweep) < time.Minute {
		return
	}
	e.lastSweep = now
	for _, m := range []map[string]*loginCode{e.codes, e.anonCodes} {
		for k, c := range m {
			if now.Sub(c.issued) > 2*CodeTTL {
				delete(m, k)
			}
		}
	}
	for k, t := range e.tokens {
		if now.After(t.expires) {
			delete(e.tokens, k)
		}
	}
}

// readBody decodes a wire POST body; anything but a JSON object posted is
// 40014 [U].
func readBody(r *http.Request, v any) bool {
	if r.Method != http.MethodPost {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, emukit.MaxWireBody))
	return err == nil && json.Unmarshal(b, v) == nil
}

// checkApp checks appid and secret, giving the err_no of a refusal.
func (e *Emulator) checkApp(appid, secret string) int {
	want, known := e.secrets[appid]
	switch {
	case !known:
		return 40015
	case subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1:
		return 40017
	}
	return 0
}

// usable reports whether c is an unused, unexpired code of appid.
func usable(c *loginCode, appid string, now time.Time) bool {
	return c != nil && c.appid == appid && !c.used && now.Before(c.issued.Add(CodeTTL))
}

type sessionData struct {
	SessionKey      string `json:"session_key"`
	OpenID          string `json:"openid"`
	AnonymousOpenID string `json:"anonymous_openid"`
	UnionID         string `json:"unionid"`
}

func (e *Emulator) code2Session(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppID         string `json:"appid"`
		Secret        string `json:"secret"`
		Code          string `json:"code"`
		AnonymousCode string `json:"anonymous_code"`
	}
	if !readBody(r, &req) {
		e.writeError(w, PathCode2Session, 40014)
		return
	}
	if errNo := e.checkApp(req.AppID, req.Secret); errNo != 0 {
		e.writeError(w, PathCode2Session, errNo)
		return
	}
	if req.Code == "" && req.AnonymousCode == "" {
		e.writeError(w, PathCode2Session, 40014)
		return
	}
	e.mu.Lock()
	now := e.now()
	var c, a *loginCode
	if req.Code != "" {
		if c = e.codes[req.Code]; !usable(c, req.AppID, now) {
			e.mu.Unlock()
			e.writeError(w, PathCode2Session, 40018)
			return
		}
	}
	if req.AnonymousCode != "" {
		if a = e.anonCodes[req.AnonymousCode]; !usable(a, req.AppID, now) {
			e.mu.Unlock()
			e.writeError(w, PathCode2Session, 40019)
			return
		}
	}
	var data sessionData
	if c != nil {
		c.used = true
		u := e.users[key{c.appid, c.id}]
		data.OpenID, data.UnionID, data.SessionKey = c.id, u.unionID, u.sessionKey
	}
	if a != nil {
		a.used = true
		data.AnonymousOpenID = a.id
	}
	e.mu.Unlock()
	e.writeSuccess(w, PathCode2Session, data)
}

func (e *Emulator) token(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppID     string `json:"appid"`
		Secret    string `json:"secret"`
		GrantType string `json:"grant_type"`
	}
	if !readBody(r, &req) {
		e.writeError(w, PathToken, 40014)
		return
	}
	if req.GrantType != "client_credential" {
		e.writeError(w, PathToken, 40020)
		return
	}
	if errNo := e.checkApp(req.AppID, req.Secret); errNo != 0 {
		e.writeError(w, PathToken, errNo)
		return
	}
	e.mu.Lock()
	now := e.now()
	e.sweep(now)
	for _, t := range e.tokens {
		if t.appid == req.AppID && t.expires.After(now.Add(TokenGrace)) {
			t.expires = now.Add(TokenGrace)
		}
	}
	tok := "0801121" + emukit.RandomString(emukit.Alnum, 60)
	e.tokens[tok] = &accessToken{appid: req.AppID, expires: now.Add(TokenTTL)}
	e.mu.Unlock()
	e.writeSuccess(w, PathToken, struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}{tok, int(TokenTTL / time.Second)})
}

func (e *Emulator) logID() string {
	return e.now().UTC().Format("20060102150405") + emukit.RandomString("0123456789ABCDEF", 18)
}

func (e *Emulator) writeSuccess(w http.ResponseWriter, path string, data any) {
	e.log.Debug("douyin emulator call", zap.String("path", path), zap.Int("err_no", 0))
	writeJSON(w, struct {
		ErrNo   int    `json:"err_no"`
		ErrTips string `json:"err_tips"`
		LogID   string `json:"log_id"`
		Data    any    `json:"data"`
	}{0, "success", e.logID(), data})
}

func (e *Emulator) writeFault(w http.ResponseWriter, r *http.Request, f Fault) {
	e.writeError(w, r.URL.Path, f.ErrCode)
}

// writeError answers an err_no; [U] whether error answers carry "data".
func (e *Emulator) writeError(w http.ResponseWriter, path string, errNo int) {
	tips, ok := errTips[errNo]
	if !ok {
		tips = fmt.Sprintf("injected fault %d", errNo)
	}
	logID := e.logID()
	e.log.Debug("douyin emulator call", zap.String("path", path), zap.Int("err_no", errNo), zap.String("log_id", logID))
	writeJSON(w, struct {
		ErrNo   int    `json:"err_no"`
		ErrTips string `json:"err_tips"`
		LogID   string `json:"log_id"`
	}{errNo, tips, logID})
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

func digits(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
