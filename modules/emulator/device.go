package emulator

import (
	"net/http"
	"strings"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/emukit"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
)

// Defaults of the profile a device hands over since 2021: the anonymous one.
const (
	DefaultNickName  = "微信用户"
	DefaultAvatarURL = "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"
	DefaultLanguage  = "zh_CN"
)

// InputError is a device-API request the emulator refuses. Over HTTP it is
// answered with Status and {"error":{"code":Code,"message":Message}}; every
// platform's emulator shares it (internal/emukit).
type InputError = emukit.InputError

var badInput = emukit.BadInput

// LoginRequest is a device's wx.login (or, for an OAuth app, the user's
// consent that ends in a redirect with a code). Every field is optional.
type LoginRequest struct {
	// AppID picks the app; the first configured one when empty.
	AppID string `json:"appid,omitempty"`
	// OpenID picks the user of that app; a new user with a generated openid
	// when empty. The same openid is the same user.
	OpenID string `json:"openid,omitempty"`
	// UnionID is returned by the code's exchange, and only then: leave it
	// out to play an app not (yet) bound to the Open Platform. It is also
	// remembered for the user's wx.getUserInfo data.
	UnionID string `json:"unionid,omitempty"`
	// SessionKey sets the user's new session_key (24 base64 characters);
	// a fresh random one when empty. Mini programs only.
	SessionKey string `json:"session_key,omitempty"`
	// Scope is an OAuth code's scope: snsapi_userinfo (default) or snsapi_base.
	Scope string `json:"scope,omitempty"`
	// Nickname and AvatarURL are what /sns/userinfo tells of an OAuth user.
	Nickname  string `json:"nickname,omitempty"`
	AvatarURL string `json:"avatar_url,omitempty"`
	// Snapshot plays an OAuth login from a "snapshot page": WeChat answers
	// with a virtual user (is_snapshotuser 1).
	Snapshot bool `json:"snapshot,omitempty"`
}

// LoginResponse is what the device gets (the code), plus what the code's
// exchange will return for it, for tests.
type LoginResponse struct {
	Code    string `json:"code"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid"`
	// SessionKey is absent for OAuth apps, which have none.
	SessionKey string `json:"session_key,omitempty"`
}

// Login performs a device's login in an app: it finds or creates the user,
// gives a mini-program user a new current session_key (the old one no
// longer decrypts) and issues a single-use code valid for [CodeTTL].
func (e *Emulator) Login(req LoginRequest) (LoginResponse, error) {
	if req.OpenID != "" && !emukit.ValidID(req.OpenID) {
		return LoginResponse{}, badInput("invalid_openid", "openid must be 1 to 128 characters of A-Z a-z 0-9 - _")
	}
	if req.UnionID != "" && !emukit.ValidID(req.UnionID) {
		return LoginResponse{}, badInput("invalid_unionid", "unionid must be 1 to 128 characters of A-Z a-z 0-9 - _")
	}
	if req.SessionKey != "" && !wxcrypto.ValidSessionKey(req.SessionKey) {
		return LoginResponse{}, badInput("invalid_session_key", "session_key must be 24 characters of standard base64 (16 bytes)")
	}
	if req.Scope != "" && req.Scope != ScopeUserInfo && req.Scope != ScopeBase {
		return LoginResponse{}, badInput("invalid_scope", "scope must be %s or %s", ScopeUserInfo, ScopeBase)
	}
	if len(req.Nickname) > 256 || len(req.AvatarURL) > 1024 {
		return LoginResponse{}, badInput("invalid_profile", "nickname or avatar_url is too long")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.app(req.AppID)
	if err != nil {
		return LoginResponse{}, err
	}
	oauth := a.cfg.Kind == config.KindOAuth
	if oauth && req.SessionKey != "" {
		return LoginResponse{}, badInput("invalid_session_key", "OAuth apps have no session_key")
	}
	if !oauth && (req.Scope != "" || req.Snapshot || req.Nickname != "" || req.AvatarURL != "") {
		return LoginResponse{}, badInput("invalid_request", "scope, snapshot, nickname and avatar_url are for OAuth apps; use /emulator/userinfo for a mini program's profile")
	}
	now := e.now()
	e.sweep(now)
	openID := req.OpenID
	if openID == "" {
		openID = newOpenID()
	}
	u, found := a.users[openID]
	if !found {
		u = &user{openID: openID}
		a.users[openID] = u
	}
	if req.UnionID != "" {
		u.unionID = req.UnionID
	}
	code := &loginCode{appID: a.cfg.AppID, openID: openID, unionID: req.UnionID, issued: now}
	resp := LoginResponse{OpenID: openID, UnionID: req.UnionID}
	if oauth {
		code.scope, code.snapshot = or(req.Scope, ScopeUserInfo), req.Snapshot
		if req.Nickname != "" {
			u.nickname = req.Nickname
		}
		if req.AvatarURL != "" {
			u.avatarURL = req.AvatarURL
		}
	} else {
		key := req.SessionKey
		if key == "" {
			key = wxcrypto.NewSessionKey()
		}
		u.sessionKey = key
		resp.SessionKey = key
	}
	resp.Code = newCode()
	e.codes[resp.Code] = code
	return resp, nil
}

// app returns the app with appid, the default one for ""; e.mu must be held.
func (e *Emulator) app(appid string) (*app, *InputError) {
	if appid == "" {
		return e.apps[e.order[0]], nil
	}
	a, found := e.apps[appid]
	if !found {
		return nil, badInput("unknown_app", "no app has this appid; the emulator serves %s", strings.Join(e.order, ", "))
	}
	return a, nil
}

// SessionKey returns a user's current session_key in an app ("" for the
// default app).
func (e *Emulator) SessionKey(appid, openID string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.app(appid)
	if err != nil {
		return "", false
	}
	u, found := a.users[openID]
	if !found {
		return "", false
	}
	return u.sessionKey, true
}

// UserInfoRequest asks for what wx.getUserInfo gives a device. Empty
// fields take the anonymous profile's values ([DefaultNickName],
// [DefaultAvatarURL], [DefaultLanguage], gender 0, no place).
type UserInfoRequest struct {
	// AppID picks the mini program (the default one when empty): the data
	// is encrypted under the user's session_key there and watermarked with it.
	AppID     string `json:"appid,omitempty"`
	OpenID    string `json:"openid"`
	NickName  string `json:"nickname,omitempty"`
	AvatarURL string `json:"avatar_url,omitempty"`
	// Gender is 0 (unknown), 1 (male) or 2 (female).
	Gender   int    `json:"gender,omitempty"`
	City     string `json:"city,omitempty"`
	Province string `json:"province,omitempty"`
	Country  string `json:"country,omitempty"`
	Language string `json:"language,omitempty"`
	// UnionID is the unionId the data carries; the one the user's last
	// login gave when empty.
	UnionID string `json:"unionid,omitempty"`
	// WatermarkAppID overrides the watermark's appid, to produce data that
	// belongs to another mini program (which the server must refuse).
	WatermarkAppID string `json:"watermark_appid,omitempty"`
}

// UserInfoResponse is wx.getUserInfo's answer.
type UserInfoResponse struct {
	RawData       string `json:"raw_data"`
	Signature     string `json:"signature"`
	EncryptedData string `json:"encrypted_data"`
	IV            string `json:"iv"`
}

// rawDataBody is rawData's shape and order.
type rawDataBody struct {
	NickName  string `json:"nickName"`
	Gender    int    `json:"gender"`
	Language  string `json:"language"`
	City      string `json:"city"`
	Province  string `json:"province"`
	Country   string `json:"country"`
	AvatarURL string `json:"avatarUrl"`
}

// UserInfo produces wx.getUserInfo's data for a user, encrypted and signed
// under the user's current session_key.
func (e *Emulator) UserInfo(req UserInfoRequest) (UserInfoResponse, error) {
	if req.Gender < 0 || req.Gender > 2 {
		return UserInfoResponse{}, badInput("invalid_gender", "gender must be 0 (unknown), 1 (male) or 2 (female)")
	}
	raw := rawDataBody{
		NickName: or(req.NickName, DefaultNickName), Gender: req.Gender, Language: or(req.Language, DefaultLanguage),
		City: req.City, Province: req.Province, Country: req.Country, AvatarURL: or(req.AvatarURL, DefaultAvatarURL),
	}
	if req.UnionID != "" && !emukit.ValidID(req.UnionID) {
		return UserInfoResponse{}, badInput("invalid_unionid", "unionid must be 1 to 128 characters of A-Z a-z 0-9 - _")
	}
	e.mu.Lock()
	a, u, err := e.knownUser(req.AppID, req.OpenID)
	var key, unionID, appID string
	if err == nil {
		key, unionID, appID = u.sessionKey, or(req.UnionID, u.unionID), a.cfg.AppID
	}
	now := e.now()
	e.mu.Unlock()
	if err != nil {
		return UserInfoResponse{}, err
	}
	rawData := emukit.CompactJSON(raw)
	plain := emukit.CompactJSON(wxcrypto.UserInfo{
		OpenID: req.OpenID, NickName: raw.NickName, Gender: raw.Gender, Language: raw.Language,
		City: raw.City, Province: raw.Province, Country: raw.Country, AvatarURL: raw.AvatarURL, UnionID: unionID,
		Watermark: wxcrypto.Watermark{Timestamp: now.Unix(), AppID: or(req.WatermarkAppID, appID)},
	})
	data, iv, encErr := wxcrypto.Encrypt(key, []byte(plain))
	if encErr != nil { // keys are validated when set
		return UserInfoResponse{}, encErr
	}
	return UserInfoResponse{RawData: rawData, Signature: wxcrypto.RawDataSignature(rawData, key), EncryptedData: data, IV: iv}, nil
}

// PhoneRequest asks for what the phone-number button gives a device.
type PhoneRequest struct {
	// AppID picks the mini program (the default one when empty).
	AppID  string `json:"appid,omitempty"`
	OpenID string `json:"openid"`
	// Phone is "13800000000", "+8613800000000" or "+1 4155550100".
	Phone string `json:"phone"`
	// CountryCode is the calling code, "86" by default; needed for a
	// "+number" outside China written without a space.
	CountryCode string `json:"country_code,omitempty"`
}

// PhoneResponse is the phone-number button's answer: a code for
// getuserphonenumber and the legacy encrypted data.
type PhoneResponse struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encrypted_data"`
	IV            string `json:"iv"`
}

// Phone produces the phone-number button's data for a user: a single-use
// code valid for [CodeTTL] and the phone number encrypted under the user's
// current session_key.
func (e *Emulator) Phone(req PhoneRequest) (PhoneResponse, error) {
	cc, pure, err := parsePhone(req.Phone, req.CountryCode)
	if err != nil {
		return PhoneResponse{}, err
	}
	full := pure
	if cc != "86" {
		full = "+" + cc + pure
	}
	e.mu.Lock()
	a, u, uerr := e.knownUser(req.AppID, req.OpenID)
	var key, appID string
	now := e.now()
	code := newCode()
	if uerr == nil {
		key, appID = u.sessionKey, a.cfg.AppID
		e.sweep(now)
		e.phoneCodes[code] = &phoneCode{appID: appID, countryCode: cc, pure: pure, full: full, issued: now}
	}
	e.mu.Unlock()
	if uerr != nil {
		return PhoneResponse{}, uerr
	}
	plain := emukit.CompactJSON(wxcrypto.PhoneInfo{PhoneNumber: full, PurePhoneNumber: pure, CountryCode: wxcrypto.CountryCode(cc),
		Watermark: wxcrypto.Watermark{Timestamp: now.Unix(), AppID: appID}})
	data, iv, encErr := wxcrypto.Encrypt(key, []byte(plain))
	if encErr != nil {
		return PhoneResponse{}, encErr
	}
	return PhoneResponse{Code: code, EncryptedData: data, IV: iv}, nil
}

// knownUser finds a mini program's user by openid; e.mu must be held.
func (e *Emulator) knownUser(appid, openID string) (*app, *user, *InputError) {
	a, err := e.app(appid)
	if err != nil {
		return nil, nil, err
	}
	if a.cfg.Kind != config.KindMiniProgram {
		return nil, nil, badInput("invalid_request", "this device call is for mini programs; %s is an OAuth app", a.cfg.AppID)
	}
	if openID == "" {
		return nil, nil, badInput("invalid_openid", "openid is required")
	}
	u, found := a.users[openID]
	if !found {
		return nil, nil, badInput("unknown_openid", "no user of this app has this openid; call /emulator/login first")
	}
	return a, u, nil
}

func parsePhone(phone, cc string) (countryCode, pure string, err error) {
	bad := func(msg string) (string, string, error) { return "", "", badInput("invalid_phone", "%s", msg) }
	phone = strings.TrimSpace(phone)
	if cc != "" && !digits(cc, 1, 4) {
		return bad("country_code must be 1 to 4 digits, without '+'")
	}
	switch {
	case phone == "":
		return bad("phone is required, e.g. 13800000000 or +8613800000000")
	case strings.HasPrefix(phone, "+"):
		rest := phone[1:]
		if c, p, spaced := strings.Cut(rest, " "); spaced {
			if cc != "" && cc != c {
				return bad("phone and country_code name different country codes")
			}
			countryCode, pure = c, strings.TrimSpace(p)
		} else {
			countryCode = cc
			if countryCode == "" {
				countryCode = "86"
			}
			if !strings.HasPrefix(rest, countryCode) {
				return bad("say the country code with country_code, or write the phone as \"+<country code> <number>\"")
			}
			pure = rest[len(countryCode):]
		}
	default:
		countryCode, pure = or(cc, "86"), phone
	}
	if !digits(countryCode, 1, 4) || !digits(pure, 4, 15) {
		return bad("phone must be digits (4 to 15) with an optional +country code, e.g. 13800000000 or +8613800000000")
	}
	return countryCode, pure, nil
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

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Fault makes the next Count calls of a WeChat path fail. ErrCode answers
// with that errcode (HTTP 200, WeChat's errmsg and a rid); HTTPStatus
// answers with that status and an empty text/html body; Body answers HTTP
// 200 with exactly that body (an answer WeChat would never give); DelayMS
// waits first (giving up if the client does), and alone only slows the call.
// SubCode is another platform's and is refused here.
type Fault = emukit.Fault

// AddFault queues a fault; faults of one path apply in the order added.
func (e *Emulator) AddFault(f Fault) error {
	if f.SubCode != "" {
		return badInput("invalid_fault", "sub_code is Alipay's; WeChat answers errcode alone")
	}
	return e.wire.AddFault(f)
}

// ClearFaults drops every pending fault and says how many calls they
// would still have failed.
func (e *Emulator) ClearFaults() int { return e.wire.ClearFaults() }

// Faults lists the pending faults, by path in [WeChatPaths] order, each
// with the calls it has left.
func (e *Emulator) Faults() []Fault { return e.wire.Faults() }

// Calls returns how many calls each WeChat path received, every path
// present.
func (e *Emulator) Calls() map[string]int { return e.wire.Calls() }

// StatsResponse is GET /emulator/stats.
type StatsResponse = emukit.StatsResponse

func (e *Emulator) handleLogin(r *http.Request) (any, error) {
	var req LoginRequest
	if err := emukit.Decode(r, &req); err != nil {
		return nil, err
	}
	return e.Login(req)
}

func (e *Emulator) handleUserInfo(r *http.Request) (any, error) {
	var req UserInfoRequest
	if err := emukit.Decode(r, &req); err != nil {
		return nil, err
	}
	return e.UserInfo(req)
}

func (e *Emulator) handlePhone(r *http.Request) (any, error) {
	var req PhoneRequest
	if err := emukit.Decode(r, &req); err != nil {
		return nil, err
	}
	return e.Phone(req)
}

func (e *Emulator) handleFaults(r *http.Request) (any, error) {
	if r.Method == http.MethodPost {
		var f Fault
		if err := emukit.Decode(r, &f); err != nil {
			return nil, err
		}
		if err := e.AddFault(f); err != nil {
			return nil, err
		}
		return map[string]any{"fault": f, "pending": e.Faults()}, nil
	}
	return e.wire.HandleFaults(r)
}

func (e *Emulator) handleStats(*http.Request) (any, error) {
	return StatsResponse{Calls: e.Calls()}, nil
}
