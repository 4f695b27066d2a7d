// Package alipayemu imitates Alipay's open-platform gateway for development
// and tests, on its real wire: POST /gateway.do with form parameters signed
// RSA2 by the app, JSON answers {"<method>_response":{…},"sign":"…"} signed
// by "Alipay" (the emulator's own key pair), errors as error_response.
//
//	POST /gateway.do  method=alipay.system.oauth.token, grant_type=authorization_code, code → open_id (or user_id), union_id?, access_token, …
//
// Every request is checked as the gateway does: app_id known (else an
// unsigned isv.invalid-app-id [U]), sign present and verifying with the
// app's public key over the independently built signing string
// (isv.invalid-signature), sign_type RSA2, method, charset utf-8, format
// JSON, timestamp "yyyy-MM-dd HH:mm:ss", version 1.0. Auth codes are single
// use and live [CodeTTL]; an unknown, used, expired or foreign code is 40002
// isv.code-invalid. An app answers open_id unless put in user_id mode
// ([WithUserIDMode], [Emulator.SetUserIDMode]), when it answers the legacy
// user_id.
//
// The development-only device API stands in for the phone (JSON in, JSON
// out, errors as {"error":{"code","message"}}):
//
//	POST   /emulator/login   {"appid"?, "openid"?, "unionid"?} → {"code","openid","unionid"?,"id_type"}   (my.getAuthCode)
//	POST   /emulator/phone   {"appid"?, "phone", "sub_code"?} → {"response"}   (my.getPhoneNumber's response string)
//	POST   /emulator/faults  {"path":"/gateway.do","errcode"? (gateway code),"sub_code"?,"http_status"?,"body"?,"delay_ms"?,"count"}
//	DELETE /emulator/faults  clear; GET lists them
//	GET    /emulator/stats   {"calls":{"/gateway.do": n}}
//
// [Emulator.Handler] serves both; [Emulator.DeviceHandler] serves the device
// API alone at /login, /phone, /faults, /stats:
//
//	mux.Handle("/alipay/", http.StripPrefix("/alipay", emu.Handler()))
//	mux.Handle("/emulator/alipay/", http.StripPrefix("/emulator/alipay", emu.DeviceHandler()))
//
// The emulator accepts the Alipay apps of the config.Apps it is built with:
// it verifies their requests with the public key of their private_key and
// encrypts phone numbers with their aes_key. The apps' alipay_public_key must
// be the emulator's ([Emulator.PublicKeyPEM]); in development
// [NewDevelopment] uses the key that config gives the apps. It never logs
// secrets, codes or tokens.
package alipayemu

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/emukit"
	"github.com/wxlogin/wxlogin/internal/rsakey"
)

// PathGateway is the gateway's path.
const PathGateway = "/gateway.do"

// MethodOAuthToken is the method that exchanges an auth code.
const MethodOAuthToken = "alipay.system.oauth.token"

// Paths lists the wire paths.
var Paths = []string{PathGateway}

// CodeTTL is how long an auth code stays valid: Alipay documents 3 minutes
// to 24 hours, at its discretion [D]; the emulator uses the shortest.
const CodeTTL = 3 * time.Minute

// ContentType is what the gateway's answers carry. [U]
const ContentType = "text/html;charset=utf-8"

// Fault makes the next calls fail; ErrCode is the gateway code (20000,
// 40002, …) and SubCode the sub_code of the error_response.
type Fault = emukit.Fault

var beijing = time.FixedZone("CST", 8*3600)

// msgs are the gateway's texts of its codes [S].
var msgs = map[string]string{
	"20000": "Service Currently Unavailable",
	"20001": "Insufficient Token Permissions",
	"40001": "Missing Required Arguments",
	"40002": "Invalid Arguments",
	"40003": "Insufficient Conditions",
	"40004": "Business Failed",
	"40005": "Call Limited",
	"40006": "Insufficient Permissions",
}

// Emulator is an in-memory Alipay gateway. It is safe for concurrent use.
type Emulator struct {
	key    *rsa.PrivateKey
	apps   map[string]*app
	appids []string
	now    func() time.Time
	log    *zap.Logger
	wire   *emukit.Wire
	mux    *http.ServeMux
	device *http.ServeMux

	mu        sync.Mutex
	lastSweep time.Time
	users     map[userKey]*user
	codes     map[string]*authCode
}

type app struct {
	pub        *rsa.PublicKey
	aes        []byte
	userIDMode bool
}

type userKey struct{ appid, id string }

type user struct{ unionID string }

type authCode struct {
	appid, id string
	issued    time.Time
	used      bool
}

// Option configures an Emulator.
type Option func(*Emulator)

// WithClock makes the emulator read the time from now.
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.now = now } }

// WithLogger makes the emulator log its calls at debug level.
func WithLogger(l *zap.Logger) Option { return func(e *Emulator) { e.log = l } }

// WithUserIDMode puts apps in the legacy user_id mode: their oauth.token
// answers user_id instead of open_id.
func WithUserIDMode(appids ...string) Option {
	return func(e *Emulator) {
		for _, id := range appids {
			if a := e.apps[id]; a != nil {
				a.userIDMode = true
			}
		}
	}
}

// New returns an emulator for the Alipay apps among apps, answering signed
// with alipayKey (a new key when nil). Every app needs a private_key (the
// emulator verifies with its public key).
func New(apps config.Apps, alipayKey *rsa.PrivateKey, opts ...Option) (*Emulator, error) {
	if alipayKey == nil {
		k, err := rsakey.Generate()
		if err != nil {
			return nil, err
		}
		alipayKey = k
	}
	e := &Emulator{
		key:   alipayKey,
		apps:  map[string]*app{},
		now:   time.Now,
		log:   zap.NewNop(),
		wire:  emukit.NewWire(Paths...),
		users: map[userKey]*user{},
		codes: map[string]*authCode{},
	}
	for _, a := range apps.Of(config.PlatformAlipay) {
		priv, err := rsakey.ParsePrivateKey(a.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("alipayemu: app %s: private_key: %w", a.AppID, err)
		}
		st := &app{pub: &priv.PublicKey}
		if a.AESKey != "" {
			if st.aes, err = rsakey.ParseAESKey(a.AESKey); err != nil {
				return nil, fmt.Errorf("alipayemu: app %s: aes_key: %w", a.AppID, err)
			}
		}
		e.apps[a.AppID] = st
		e.appids = append(e.appids, a.AppID)
	}
	for _, o := range opts {
		o(e)
	}
	e.device = emukit.DeviceMux(e.wire, e.handleLogin)
	e.device.Handle("/phone", emukit.Device(http.MethodPost, e.handlePhone))
	e.mux = http.NewServeMux()
	e.mux.Handle(PathGateway, e.wire.Handle(PathGateway, ContentType, e.writeFault, e.gateway))
	e.mux.Handle("/emulator/", http.StripPrefix("/emulator", e.device))
	return e, nil
}

// NewDevelopment returns the emulator for cfg's Alipay apps, signing with
// the development key config gives them (config.Config.AlipayEmulatorKey).
func NewDevelopment(cfg *config.Config, opts ...Option) (*Emulator, error) {
	s, err := cfg.AlipayEmulatorKey()
	if err != nil {
		return nil, fmt.Errorf("alipayemu: %w", err)
	}
	key, err := rsakey.ParsePrivateKey(s)
	if err != nil {
		return nil, fmt.Errorf("alipayemu: the development key: %w", err)
	}
	return New(cfg.Apps, key, opts...)
}

// PublicKey is the emulator's "Alipay public key".
func (e *Emulator) PublicKey() *rsa.PublicKey { return &e.key.PublicKey }

// PublicKeyPEM is PublicKey as PEM, for the apps' alipay_public_key.
func (e *Emulator) PublicKeyPEM() string {
	s, _ := rsakey.PublicKeyPEM(&e.key.PublicKey)
	return s
}

// SetUserIDMode switches an app between open_id (false) and user_id (true).
func (e *Emulator) SetUserIDMode(appid string, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.apps[appid]; a != nil {
		a.userIDMode = on
	}
}

// Handler serves the gateway and the device API under /emulator/.
func (e *Emulator) Handler() http.Handler { return e.mux }

// DeviceHandler serves the device API at /login, /phone, /faults, /stats.
func (e *Emulator) DeviceHandler() http.Handler { return e.device }

// AddFault queues a fault of the gateway.
func (e *Emulator) AddFault(f Fault) error { return e.wire.AddFault(f) }

// ClearFaults drops the pending faults.
func (e *Emulator) ClearFaults() int { return e.wire.ClearFaults() }

// Faults lists the pending faults.
func (e *Emulator) Faults() []Fault { return e.wire.Faults() }

// Calls returns the calls the gateway received.
func (e *Emulator) Calls() map[string]int { return e.wire.Calls() }

// LoginRequest is a device's my.getAuthCode. Every field is optional.
type LoginRequest struct {
	// AppID picks the app; optional when the emulator has one Alipay app.
	AppID string `json:"appid,omitempty"`
	// OpenID picks the user by the id the app sees (its open_id, or its
	// user_id in user_id mode); a new user when empty.
	OpenID string `json:"openid,omitempty"`
	// UnionID sets the user's union_id; empty keeps the current one.
	UnionID string `json:"unionid,omitempty"`
}

// LoginResponse is what my.getAuthCode gives the device (the auth code as
// code), plus the ids oauth.token will return for it.
type LoginResponse struct {
	Code    string `json:"code"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	// IDType is "open_id" or "user_id", the app's mode.
	IDType string `json:"id_type"`
}

// Login performs a device's my.getAuthCode: a single-use auth code valid
// for CodeTTL.
func (e *Emulator) Login(req LoginRequest) (LoginResponse, error) {
	appid, err := emukit.PickApp(req.AppID, e.appids)
	if err != nil {
		return LoginResponse{}, err
	}
	for name, v := range map[string]string{"openid": req.OpenID, "unionid": req.UnionID} {
		if v != "" && !emukit.ValidID(v) {
			return LoginResponse{}, emukit.BadInput("invalid_"+name, "%s must be 1 to 128 characters of A-Z a-z 0-9 - _", name)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	e.sweep(now)
	a := e.apps[appid]
	idType := "open_id"
	id := req.OpenID
	if a.userIDMode {
		idType = "user_id"
		if id == "" {
			id = "2088" + emukit.RandomString(emukit.Digits, 12)
		}
	} else if id == "" {
		id = "0" + emukit.RandomString(emukit.Alnum, 46)
	}
	u := e.users[userKey{appid, id}]
	if u == nil {
		u = &user{}
		e.users[userKey{appid, id}] = u
	}
	if req.UnionID != "" {
		u.unionID = req.UnionID
	}
	code := emukit.RandomString(emukit.Alnum, 32)
	e.codes[code] = &authCode{appid: appid, id: id, issued: now}
	return LoginResponse{Code: code, OpenID: id, UnionID: u.unionID, IDType: idType}, nil
}

// PhoneRequest asks for my.getPhoneNumber's response string.
type PhoneRequest struct {
	AppID string `json:"appid,omitempty"`
	// Phone is the mobile number, e.g. "13800000000".
	Phone string `json:"phone"`
	// SubCode, when set, makes the content a refusal (code 40003) with it,
	// e.g. "isv.invalid-auth-relations".
	SubCode string `json:"sub_code,omitempty"`
}

// PhoneResponse holds my.getPhoneNumber's response string.
type PhoneResponse struct {
	Response string `json:"response"`
}

// Phone produces my.getPhoneNumber's response string for the app: the
// content encrypted with the app's aes_key, signed by "Alipay" over the
// ciphertext in double quotes.
func (e *Emulator) Phone(req PhoneRequest) (PhoneResponse, error) {
	appid, err := emukit.PickApp(req.AppID, e.appids)
	if err != nil {
		return PhoneResponse{}, err
	}
	a := e.apps[appid]
	if a.aes == nil {
		return PhoneResponse{}, emukit.BadInput("no_aes_key", "the app has no aes_key: my.getPhoneNumber needs one")
	}
	var content any
	switch {
	case req.SubCode != "":
		content = map[string]string{"code": "40003", "msg": "Insufficient Conditions", "subCode": req.SubCode, "subMsg": "无权限获取"}
	case !digits(req.Phone, 5, 15):
		return PhoneResponse{}, emukit.BadInput("invalid_phone", "phone must be 5 to 15 digits")
	default:
		content = map[string]string{"code": "10000", "msg": "Success", "mobile": req.Phone}
	}
	b, _ := json.Marshal(content)
	cipherText, err := encryptAES(a.aes, b)
	if err != nil {
		return PhoneResponse{}, err
	}
	sig, err := e.sign([]byte(`"` + cipherText + `"`))
	if err != nil {
		return PhoneResponse{}, err
	}
	out, _ := json.Marshal(map[string]string{"response": cipherText, "sign": sig, "sign_type": "RSA2", "encrypt_type": "AES", "charset": "UTF-8"})
	return PhoneResponse{Response: string(out)}, nil
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

// sweep forgets codes long past any use; e.mu must be held.
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
}

// gatewayError is an error_response.
type gatewayError struct {
	code, subCode, subMsg string
	unsigned              bool
}

func refuse(code, subCode, subMsg string) *gatewayError {
	return &gatewayError{code: code, subCode: subCode, subMsg: subMsg}
}

// signingString is the gateway's signing rule, written here independently
// of package alipay: every parameter but sign with a value, sorted by key,
// k=v joined with "&", raw values.
func signingString(form map[string][]string) string {
	var pairs []string
	for k, vs := range form {
		if k == "sign" || len(vs) == 0 || vs[0] == "" {
			continue
		}
		pairs = append(pairs, k+"="+vs[0])
	}
	sort.Slice(pairs, func(i, j int) bool {
		ki, _, _ := strings.Cut(pairs[i], "=")
		kj, _, _ := strings.Cut(pairs[j], "=")
		return ki < kj
	})
	return strings.Join(pairs, "&")
}

func (e *Emulator) gateway(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, emukit.MaxWireBody)
	if err := r.ParseForm(); err != nil {
		e.writeError(w, "", refuse("40002", "isv.invalid-parameter", "请求参数无法解析"))
		return
	}
	form := r.Form
	method := form.Get("method")
	if err := e.check(form); err != nil {
		e.writeError(w, method, err)
		return
	}
	switch method {
	case MethodOAuthToken:
		node, err := e.oauthToken(form)
		if err != nil {
			e.writeError(w, method, err)
			return
		}
		e.log.Debug("alipay emulator call", zap.String("method", method), zap.String("code", "10000"))
		e.writeSigned(w, "alipay_system_oauth_token_response", node)
	default:
		e.writeError(w, method, refuse("40002", "isv.invalid-method", "不存在的方法名"))
	}
}

// check applies the gateway's common checks.
func (e *Emulator) check(form map[string][]string) *gatewayError {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	appid := get("app_id")
	if appid == "" {
		return &gatewayError{code: "40001", subCode: "isv.missing-app-id", subMsg: "缺少AppID参数", unsigned: true}
	}
	e.mu.Lock()
	a := e.apps[appid]
	e.mu.Unlock()
	if a == nil {
		return &gatewayError{code: "40002", subCode: "isv.invalid-app-id", subMsg: "无效的AppID参数", unsigned: true}
	}
	switch {
	case get("sign") == "":
		return refuse("40001", "isv.missing-signature", "缺少签名参数")
	case get("sign_type") == "":
		return refuse("40001", "isv.missing-signature-type", "缺少签名类型参数")
	case get("sign_type") != "RSA2":
		return refuse("40002", "isv.invalid-signature-type", "无效的签名类型")
	}
	sig, err := base64.StdEncoding.DecodeString(get("sign"))
	sum := sha256.Sum256([]byte(signingString(form)))
	if err != nil || rsa.VerifyPKCS1v15(a.pub, crypto.SHA256, sum[:], sig) != nil {
		return refuse("40002", "isv.invalid-signature", "验签出错") // [U] sub_code
	}
	switch {
	case get("method") == "":
		return refuse("40001", "isv.missing-method", "缺少方法名参数")
	case get("charset") != "" && !strings.EqualFold(get("charset"), "utf-8"):
		return refuse("40002", "isv.invalid-charset", "字符集错误")
	case get("format") != "" && !strings.EqualFold(get("format"), "JSON"):
		return refuse("40002", "isv.invalid-format", "无效的数据格式")
	case get("timestamp") == "":
		return refuse("40001", "isv.missing-timestamp", "缺少时间戳参数")
	case get("version") == "":
		return refuse("40001", "isv.missing-version", "缺少版本参数")
	case get("version") != "1.0":
		return refuse("40002", "isv.invalid-parameter", "版本号错误")
	}
	if _, err := time.ParseInLocation("2006-01-02 15:04:05", get("timestamp"), beijing); err != nil {
		return refuse("40002", "isv.invalid-timestamp", "非法的时间戳参数")
	}
	return nil
}

type oauthNode struct {
	AccessToken  string `json:"access_token"`
	AlipayUserID string `json:"alipay_user_id,omitempty"`
	AuthStart    string `json:"auth_start"`
	ExpiresIn    int    `json:"expires_in"`
	ReExpiresIn  int    `json:"re_expires_in"`
	RefreshToken string `json:"refresh_token"`
	UserID       string `json:"user_id,omitempty"`
	OpenID       string `json:"open_id,omitempty"`
	UnionID      string `json:"union_id,omitempty"`
}

func (e *Emulator) oauthToken(form map[string][]string) (any, *gatewayError) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if get("grant_type") != "authorization_code" {
		return nil, refuse("40002", "isv.grant-type-invalid", "grant_type参数无效") // [U]; refresh_token is not emulated
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	c := e.codes[get("code")]
	appid := get("app_id")
	if c == nil || c.appid != appid || c.used || !now.Before(c.issued.Add(CodeTTL)) {
		return nil, refuse("40002", "isv.code-invalid", "授权码code无效")
	}
	c.used = true
	node := oauthNode{
		AccessToken:  "authusrB" + emukit.RandomString(emukit.Alnum, 32),
		RefreshToken: "authusrB" + emukit.RandomString(emukit.Alnum, 32),
		AuthStart:    now.In(beijing).Format("2006-01-02 15:04:05"),
		ExpiresIn:    1296000,
		ReExpiresIn:  2592000,
		UnionID:      e.users[userKey{c.appid, c.id}].unionID,
	}
	if e.apps[appid].userIDMode {
		node.UserID = c.id
	} else {
		node.OpenID = c.id
	}
	return node, nil
}

func (e *Emulator) sign(content []byte) (string, error) {
	sum := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(rand.Reader, e.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// writeSigned answers {"<nodeName>":<node>,"sign":"…"}, the signature over
// the node's bytes exactly as written.
func (e *Emulator) writeSigned(w http.ResponseWriter, nodeName string, node any) {
	raw, err := json.Marshal(node)
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	sig, err := e.sign(raw)
	if err != nil {
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	key, _ := json.Marshal(nodeName)
	body := fmt.Sprintf(`{%s:%s,"sign":"%s"}`, key, raw, sig)
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body))
}

func (e *Emulator) writeFault(w http.ResponseWriter, r *http.Request, f Fault) {
	code := "40004"
	if f.ErrCode != 0 {
		code = strconv.Itoa(f.ErrCode)
	}
	e.writeError(w, "fault", &gatewayError{code: code, subCode: f.SubCode, subMsg: "injected fault"})
}

// writeError answers an error_response, signed unless the app is unknown.
func (e *Emulator) writeError(w http.ResponseWriter, method string, ge *gatewayError) {
	msg, ok := msgs[ge.code]
	if !ok {
		msg = "Injected Fault"
	}
	node := map[string]string{"code": ge.code, "msg": msg}
	if ge.subCode != "" {
		node["sub_code"], node["sub_msg"] = ge.subCode, ge.subMsg
	}
	e.log.Debug("alipay emulator call", zap.String("method", method), zap.String("code", ge.code), zap.String("sub_code", ge.subCode))
	if !ge.unsigned {
		e.writeSigned(w, "error_response", node)
		return
	}
	b, _ := json.Marshal(map[string]any{"error_response": node})
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

// encryptAES seals plaintext as Alipay does for my.getPhoneNumber: AES-CBC,
// IV of 16 zero bytes, PKCS#7, standard base64.
func encryptAES(key, plaintext []byte) (string, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(append([]byte{}, plaintext...), bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(block, make([]byte, aes.BlockSize)).CryptBlocks(padded, padded)
	return base64.StdEncoding.EncodeToString(padded), nil
}
