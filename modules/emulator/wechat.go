package emulator

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
)

// maxWireBody caps the JSON bodies WeChat's POST endpoints read.
const maxWireBody = 1 << 20

type code2SessionBody struct {
	SessionKey string `json:"session_key"`
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid,omitempty"`
}

type tokenBody struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

type phoneNumberBody struct {
	statusBody
	PhoneInfo wxcrypto.PhoneInfo `json:"phone_info"`
}

type resetBody struct {
	statusBody
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
}

type oauthTokenBody struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	OpenID       string `json:"openid"`
	Scope        string `json:"scope"`
	UnionID      string `json:"unionid,omitempty"`
	Snapshot     int    `json:"is_snapshotuser,omitempty"`
}

type oauthUserBody struct {
	OpenID     string   `json:"openid"`
	Nickname   string   `json:"nickname"`
	Sex        int      `json:"sex"`
	Language   string   `json:"language"`
	City       string   `json:"city"`
	Province   string   `json:"province"`
	Country    string   `json:"country"`
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
	UnionID    string   `json:"unionid,omitempty"`
}

// checkApp checks the caller's appid and AppSecret and returns the app.
func (e *Emulator) checkApp(appID, secret string) (*app, *apiError) {
	switch {
	case appID == "":
		return nil, wxErr(41002)
	case secret == "":
		return nil, wxErr(41004)
	}
	a, found := e.apps[appID]
	switch {
	case !found:
		return nil, wxErr(40013)
	case subtle.ConstantTimeCompare([]byte(secret), []byte(a.cfg.Secret)) != 1:
		return nil, wxErr(40125)
	}
	return a, nil
}

// takeCode spends a login code of app a; e.mu must be held. Unknown codes,
// codes of another app and expired codes are 40029, spent ones 40163.
func (e *Emulator) takeCode(a *app, code string, now time.Time) (*loginCode, *apiError) {
	c, found := e.codes[code]
	switch {
	case !found || c.appID != a.cfg.AppID:
		return nil, wxErr(40029)
	case c.used:
		return nil, wxErr(40163)
	case !now.Before(c.issued.Add(CodeTTL)):
		return nil, wxErr(40029)
	}
	c.used = true
	return c, nil
}

// code2Session exchanges a wx.login code: GET /sns/jscode2session.
func (e *Emulator) code2Session(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.checkApp(q.Get("appid"), q.Get("secret"))
	if err != nil {
		return nil, err
	}
	if gt := q.Get("grant_type"); gt != "" && gt != "authorization_code" {
		return nil, wxErr(40002)
	}
	if a.cfg.Kind != config.KindMiniProgram {
		return nil, wxErr(40013) // [U] what WeChat answers a non-mini-program appid here is undocumented
	}
	jsCode := q.Get("js_code")
	if jsCode == "" {
		return nil, wxErr(41008)
	}
	now := e.now()
	c, found := e.codes[jsCode]
	if !found || c.appID != a.cfg.AppID {
		return nil, wxErr(40029)
	}
	u := a.users[c.openID]
	// The quota counts every call made with one of the user's codes, per
	// calendar minute ("retry next minute").
	if minute := now.Unix() / 60; u.quotaMinute != minute {
		u.quotaMinute, u.quotaCalls = minute, 0
	}
	if u.quotaCalls >= MinuteQuota {
		return nil, wxErr(45011)
	}
	u.quotaCalls++
	if _, err := e.takeCode(a, jsCode, now); err != nil {
		return nil, err
	}
	return code2SessionBody{SessionKey: u.sessionKey, OpenID: u.openID, UnionID: c.unionID}, nil
}

// oauthAccessToken exchanges an OAuth app's code: GET /sns/oauth2/access_token.
func (e *Emulator) oauthAccessToken(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.checkApp(q.Get("appid"), q.Get("secret"))
	if err != nil {
		return nil, err
	}
	if q.Get("grant_type") != "authorization_code" {
		return nil, wxErr(40002)
	}
	if a.cfg.Kind != config.KindOAuth {
		return nil, wxErr(40013) // [U] as for jscode2session
	}
	code := q.Get("code")
	if code == "" {
		return nil, wxErr(41008)
	}
	now := e.now()
	c, err := e.takeCode(a, code, now)
	if err != nil {
		return nil, err
	}
	t := &oauthToken{appID: a.cfg.AppID, openID: c.openID, unionID: c.unionID, scope: c.scope, snapshot: c.snapshot, expires: now.Add(TokenTTL)}
	if c.snapshot {
		// A snapshot page's virtual user has an openid of its own and no unionid.
		t.openID, t.unionID = newOpenID(), ""
	}
	if c.scope == ScopeBase {
		t.unionID = "" // snsapi_base never yields a unionid
	}
	value := newAccessToken()
	e.oauthTokens[value] = t
	body := oauthTokenBody{AccessToken: value, ExpiresIn: int(TokenTTL / time.Second), RefreshToken: newAccessToken(),
		OpenID: t.openID, Scope: t.scope, UnionID: t.unionID}
	if t.snapshot {
		body.Snapshot = 1
	}
	return body, nil
}

// oauthUserInfo answers GET /sns/userinfo for an OAuth user token.
func (e *Emulator) oauthUserInfo(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	e.mu.Lock()
	defer e.mu.Unlock()
	tok := q.Get("access_token")
	if tok == "" {
		return nil, wxErr(41001)
	}
	t, found := e.oauthTokens[tok]
	switch {
	case !found:
		return nil, wxErr(40001)
	case !e.now().Before(t.expires):
		return nil, wxErr(42001)
	case q.Get("openid") != t.openID:
		return nil, wxErr(40003)
	case t.scope != ScopeUserInfo || t.snapshot:
		return nil, wxErr(48001)
	}
	body := oauthUserBody{OpenID: t.openID, Privilege: []string{}, UnionID: t.unionID}
	if u, ok := e.apps[t.appID].users[t.openID]; ok {
		body.Nickname, body.HeadImgURL = u.nickname, u.avatarURL
	}
	return body, nil
}

// token issues an access token: GET /cgi-bin/token. Each fetch retires the
// earlier tokens of this endpoint after TokenGrace.
func (e *Emulator) token(r *http.Request) (any, *apiError) {
	q := r.URL.Query()
	if q.Get("grant_type") != "client_credential" {
		return nil, wxErr(40002)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.checkApp(q.Get("appid"), q.Get("secret"))
	if err != nil {
		return nil, err
	}
	now := e.now()
	e.sweep(now)
	for _, t := range e.tokens {
		if !t.stable && t.appID == a.cfg.AppID {
			t.retire(now)
		}
	}
	tok := newAccessToken()
	e.tokens[tok] = &accessToken{appID: a.cfg.AppID, value: tok, expires: now.Add(TokenTTL)}
	return tokenBody{AccessToken: tok, ExpiresIn: int(TokenTTL / time.Second)}, nil
}

// stableToken issues an access token: POST /cgi-bin/stable_token. The same
// token comes back until TokenGrace before it expires; force_refresh
// issues a new one and retires the old one after TokenGrace. Stable tokens
// and /cgi-bin/token tokens do not affect each other.
func (e *Emulator) stableToken(r *http.Request) (any, *apiError) {
	if r.Method != http.MethodPost {
		return nil, wxErr(43002)
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := readWireJSON(r, &req); err != nil {
		return nil, err
	}
	if req.GrantType != "client_credential" {
		return nil, wxErr(40002)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.checkApp(req.AppID, req.Secret)
	if err != nil {
		return nil, err
	}
	now := e.now()
	e.sweep(now)
	if cur := a.stable; cur != nil && !req.ForceRefresh && now.Before(cur.expires.Add(-TokenGrace)) {
		return tokenBody{AccessToken: cur.value, ExpiresIn: int(cur.expires.Sub(now) / time.Second)}, nil
	}
	if cur := a.stable; cur != nil && req.ForceRefresh {
		cur.retire(now)
	}
	tok := newAccessToken()
	a.stable = &accessToken{appID: a.cfg.AppID, value: tok, stable: true, expires: now.Add(TokenTTL)}
	e.tokens[tok] = a.stable
	return tokenBody{AccessToken: tok, ExpiresIn: int(TokenTTL / time.Second)}, nil
}

// retire makes a superseded token stop working TokenGrace from now.
func (t *accessToken) retire(now time.Time) {
	if end := now.Add(TokenGrace); t.retired.IsZero() || end.Before(t.retired) {
		t.retired = end
	}
}

// checkToken validates an access_token and returns its app; e.mu must be held.
func (e *Emulator) checkToken(tok string, now time.Time) (*app, *apiError) {
	if tok == "" {
		return nil, wxErr(41001)
	}
	if !looksLikeToken(tok) {
		return nil, wxErr(40014)
	}
	t, found := e.tokens[tok]
	switch {
	case !found:
		return nil, wxErr(40001)
	case !now.Before(t.expires):
		return nil, wxErr(42001)
	case !t.retired.IsZero() && !now.Before(t.retired):
		return nil, wxErr(40001)
	}
	return e.apps[t.appID], nil
}

func looksLikeToken(s string) bool {
	if len(s) < 20 || len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// phoneNumber exchanges a phone code: POST /wxa/business/getuserphonenumber.
func (e *Emulator) phoneNumber(r *http.Request) (any, *apiError) {
	if r.Method != http.MethodPost {
		return nil, wxErr(43002)
	}
	tok := r.URL.Query().Get("access_token")
	e.mu.Lock()
	a, err := e.checkToken(tok, e.now())
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var req struct {
		Code string `json:"code"`
	}
	if err := readWireJSON(r, &req); err != nil {
		return nil, err
	}
	if req.Code == "" {
		return nil, wxErr(41008)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	c, found := e.phoneCodes[req.Code]
	switch {
	case !found || c.used || !now.Before(c.issued.Add(CodeTTL)):
		return nil, wxErr(40029)
	case c.appID != a.cfg.AppID:
		return nil, wxErr(40013) // the code of another appid
	}
	c.used = true
	return phoneNumberBody{statusBody: okStatus, PhoneInfo: wxcrypto.PhoneInfo{
		PhoneNumber: c.full, PurePhoneNumber: c.pure, CountryCode: wxcrypto.CountryCode(c.countryCode),
		Watermark: wxcrypto.Watermark{Timestamp: now.Unix(), AppID: a.cfg.AppID},
	}}, nil
}

// sessionCall checks what checksession and resetusersessionkey share and
// returns the user; e.mu must be held.
func (e *Emulator) sessionCall(r *http.Request, unknownUser int) (*user, *apiError) {
	q := r.URL.Query()
	a, err := e.checkToken(q.Get("access_token"), e.now())
	if err != nil {
		return nil, err
	}
	openID := q.Get("openid")
	if openID == "" {
		return nil, wxErr(41009)
	}
	if q.Get("sig_method") != "hmac_sha256" {
		return nil, wxErr(87008)
	}
	u, found := a.users[openID]
	if !found {
		return nil, wxErr(unknownUser)
	}
	// GET calls sign the empty body with the user's current session_key.
	if !wxcrypto.VerifySessionSignature(u.sessionKey, nil, q.Get("signature")) {
		return nil, wxErr(87009)
	}
	return u, nil
}

// checkSession answers GET /wxa/checksession.
func (e *Emulator) checkSession(r *http.Request) (any, *apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.sessionCall(r, 87009); err != nil {
		return nil, err
	}
	return okStatus, nil
}

// resetSessionKey answers GET /wxa/resetusersessionkey: the user gets a
// new session_key, which becomes the current one.
func (e *Emulator) resetSessionKey(r *http.Request) (any, *apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u, err := e.sessionCall(r, 87007)
	if err != nil {
		return nil, err
	}
	u.sessionKey = wxcrypto.NewSessionKey()
	return resetBody{statusBody: okStatus, OpenID: u.openID, SessionKey: u.sessionKey}, nil
}

// readWireJSON decodes a WeChat POST body; anything unreadable is 47001.
func readWireJSON(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWireBody+1))
	if err != nil || len(body) > maxWireBody || json.Unmarshal(body, v) != nil {
		return wxErr(47001)
	}
	return nil
}
