package alipay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/internal/rsakey"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// The gateway, relative to an app's base URL, and the method this package calls.
const (
	PathGateway      = "/gateway.do"
	MethodOAuthToken = "alipay.system.oauth.token"
)

// DefaultBaseURL is Alipay's gateway host, used when config.App.BaseURL is
// empty (the sandbox is https://openapi-sandbox.dl.alipaydev.com).
const DefaultBaseURL = "https://openapi.alipay.com"

// MaxResponseBytes caps the body read from Alipay; a larger one is an error.
const MaxResponseBytes = platformhttp.MaxResponseBytes

// DefaultTimeout bounds each call unless WithTimeout says otherwise.
const DefaultTimeout = platformhttp.DefaultTimeout

// TimestampLayout is the gateway's timestamp format, in Beijing time. [U]
// GMT+8 is customary; the rule is not written down.
const TimestampLayout = "2006-01-02 15:04:05"

// beijing is UTC+8, which has no daylight saving time.
var beijing = time.FixedZone("CST", 8*3600)

// UserIDPrefix starts the Identity.OpenID of a user of an app still in
// user_id mode: "user_id:2088…". Alipay's user_id is one id per person
// across all apps, open_id one per person and app; the prefix keeps the two
// kinds apart — an open_id never contains ':' — so a user_id can never
// collide with or be mistaken for an open_id.
const UserIDPrefix = "user_id:"

// SplitOpenID tells an Identity.OpenID from this package apart: the
// Alipay id and whether it is a legacy user_id (else an open_id).
func SplitOpenID(openid string) (id string, isUserID bool) {
	if rest, ok := strings.CutPrefix(openid, UserIDPrefix); ok {
		return rest, true
	}
	return openid, false
}

// Client is what the Alipay provider needs from Alipay.
type Client interface {
	// OAuthToken exchanges my.getAuthCode's authCode of app appid at
	// alipay.system.oauth.token.
	OAuthToken(ctx context.Context, appid, code string) (OAuthToken, error)
	// PhoneNumber verifies and decrypts my.getPhoneNumber's response
	// string for app appid.
	PhoneNumber(ctx context.Context, appid, response string) (provider.Phone, error)
}

var _ Client = (*HTTPClient)(nil)

// OAuthToken is the answer of alipay.system.oauth.token. Its tokens are the
// user's, for user-scoped APIs; they print as "[redacted]".
type OAuthToken struct {
	// OpenID is the app-scoped id (apps switched to open_id, all new apps).
	OpenID string
	// UserID is the legacy Alipay-wide id 2088… (apps in user_id mode).
	UserID string
	// UnionID is the id shared by the apps of one developer account, when
	// Alipay sends one. [S]
	UnionID      string
	AccessToken  provider.Secret
	RefreshToken provider.Secret
	// ExpiresIn and ReExpiresIn are the lifetimes of the two tokens.
	ExpiresIn, ReExpiresIn time.Duration
}

// MarshalLogObject logs the ids, never the tokens.
func (t OAuthToken) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	if t.OpenID != "" {
		enc.AddString("open_id", t.OpenID)
	}
	if t.UserID != "" {
		enc.AddString("user_id", t.UserID)
	}
	if t.UnionID != "" {
		enc.AddString("union_id", t.UnionID)
	}
	return nil
}

// HTTPClient is the Client that speaks to Alipay's gateway (or its
// emulator), for every Alipay app of the deployment.
type HTTPClient struct {
	apps    map[string]*app
	timeout time.Duration
	http    *http.Client
	log     *zap.Logger
	now     func() time.Time
}

type app struct {
	cfg  config.App
	base string
	priv *rsa.PrivateKey
	pub  *rsa.PublicKey
	aes  []byte // nil: no phone numbers
}

// Option adjusts NewClient.
type Option func(*options)

type options struct {
	logger     *zap.Logger
	httpClient *http.Client
	timeout    time.Duration
	now        func() time.Time
	tracer     trace.TracerProvider
}

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.logger = l } }

// WithTracerProvider makes every call a client span of tp, without its
// query string (which carries secrets, codes and access tokens).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tracer = tp } }

// WithHTTPClient sets the HTTP client; NewClient refuses one that skips TLS
// verification, and stops it from following redirects.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithTimeout bounds every call (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithClock sets the clock of request timestamps (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// NewClient builds the client for the Alipay apps among apps (others are
// ignored): each needs private_key and alipay_public_key; aes_key enables
// phone numbers. The keys are parsed here, so a bad one fails at start.
func NewClient(apps config.Apps, opts ...Option) (*HTTPClient, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	if o.timeout <= 0 {
		o.timeout = DefaultTimeout
	}
	if o.now == nil {
		o.now = time.Now
	}
	hc, err := platformhttp.NewHTTPClient(o.httpClient)
	if err != nil {
		return nil, fmt.Errorf("alipay: %w", err)
	}
	c := &HTTPClient{apps: map[string]*app{}, timeout: o.timeout, http: platformhttp.TracedClient(hc, o.tracer, Platform), log: o.logger.Named("alipay"), now: o.now}
	for _, a := range apps.Of(Platform) {
		st, err := newApp(a)
		if err != nil {
			return nil, fmt.Errorf("alipay: app %q: %w", a.AppID, err)
		}
		c.apps[a.AppID] = st
	}
	return c, nil
}

func newApp(a config.App) (*app, error) {
	if a.AppID == "" {
		return nil, errors.New("appid is required")
	}
	base, err := platformhttp.BaseURL(a.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	st := &app{cfg: a, base: base}
	if st.priv, err = rsakey.ParsePrivateKey(a.PrivateKey); err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	if st.pub, err = rsakey.ParsePublicKey(a.AlipayPublicKey); err != nil {
		return nil, fmt.Errorf("alipay_public_key: %w", err)
	}
	if a.AESKey != "" {
		if st.aes, err = rsakey.ParseAESKey(a.AESKey); err != nil {
			return nil, fmt.Errorf("aes_key: %w", err)
		}
	}
	return st, nil
}

// CloseIdleConnections closes the keep-alive connections the client holds.
func (c *HTTPClient) CloseIdleConnections() { c.http.CloseIdleConnections() }

func (c *HTTPClient) app(appid string) (*app, error) {
	a, ok := c.apps[appid]
	if !ok {
		return nil, &provider.Error{Platform: Platform, Kind: provider.KindMisconfigured,
			Message: fmt.Sprintf("app %q is not a configured Alipay app", appid)}
	}
	return a, nil
}

// OAuthToken calls alipay.system.oauth.token with grant_type
// authorization_code. The answer must carry a signature that verifies with
// the app's alipay_public_key over the exact bytes of its response node, and
// an open_id or user_id.
func (c *HTTPClient) OAuthToken(ctx context.Context, appid, code string) (OAuthToken, error) {
	a, err := c.app(appid)
	if err != nil {
		return OAuthToken{}, err
	}
	if code == "" {
		return OAuthToken{}, &Error{Method: MethodOAuthToken, Code: "40002", Msg: "Invalid Arguments",
			SubCode: "isv.code-invalid", SubMsg: "empty auth code (not sent to Alipay)"}
	}
	var out struct {
		UserID       string      `json:"user_id"`
		OpenID       string      `json:"open_id"`
		UnionID      string      `json:"union_id"`
		AccessToken  string      `json:"access_token"`
		RefreshToken string      `json:"refresh_token"`
		ExpiresIn    json.Number `json:"expires_in"`
		ReExpiresIn  json.Number `json:"re_expires_in"`
	}
	params := url.Values{"grant_type": {"authorization_code"}, "code": {code}}
	if err := c.call(ctx, a, MethodOAuthToken, params, &out); err != nil {
		return OAuthToken{}, err
	}
	if out.OpenID == "" && out.UserID == "" {
		return OAuthToken{}, &ResponseError{Platform: Platform, Path: MethodOAuthToken, StatusCode: http.StatusOK, Problem: "success without open_id or user_id"}
	}
	if strings.Contains(out.OpenID, ":") {
		return OAuthToken{}, &ResponseError{Platform: Platform, Path: MethodOAuthToken, StatusCode: http.StatusOK, Problem: "open_id contains ':'"}
	}
	seconds := func(n json.Number) time.Duration {
		v, _ := n.Int64()
		return time.Duration(v) * time.Second
	}
	return OAuthToken{
		OpenID: out.OpenID, UserID: out.UserID, UnionID: out.UnionID,
		AccessToken: provider.Secret(out.AccessToken), RefreshToken: provider.Secret(out.RefreshToken),
		ExpiresIn: seconds(out.ExpiresIn), ReExpiresIn: seconds(out.ReExpiresIn),
	}, nil
}

// SignedParams returns the whole form of a gateway request of app appid:
// the common parameters, the method's params, and the RSA2 signature.
func (c *HTTPClient) SignedParams(appid, method string, params url.Values) (url.Values, error) {
	a, err := c.app(appid)
	if err != nil {
		return nil, err
	}
	return c.signed(a, method, params)
}

func (c *HTTPClient) signed(a *app, method string, params url.Values) (url.Values, error) {
	form := url.Values{
		"app_id":    {a.cfg.AppID},
		"method":    {method},
		"format":    {"JSON"},
		"charset":   {"utf-8"},
		"sign_type": {"RSA2"},
		"timestamp": {c.now().In(beijing).Format(TimestampLayout)},
		"version":   {"1.0"},
	}
	for k, v := range params {
		form[k] = v
	}
	sig, err := Sign(a.priv, form)
	if err != nil {
		return nil, fmt.Errorf("alipay: sign: %w", err)
	}
	form.Set("sign", sig)
	return form, nil
}

// call POSTs a signed gateway request, verifies the answer and decodes the
// method's response node into out. It logs one line, never the code,
// tokens or keys.
func (c *HTTPClient) call(ctx context.Context, a *app, method string, params url.Values, out any) error {
	form, err := c.signed(a, method, params)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := platformhttp.Do(ctx, c.http, c.timeout, platformhttp.Request{
		Method: http.MethodPost, URL: a.base + PathGateway,
		Body: []byte(form.Encode()), ContentType: "application/x-www-form-urlencoded;charset=utf-8",
	}, MaxResponseBytes)
	fields := []zap.Field{zap.String("appid", a.cfg.AppID), zap.String("method", method), zap.Duration("duration", time.Since(start))}
	switch {
	case errors.Is(err, platformhttp.ErrTooLarge):
		err = &ResponseError{Platform: Platform, Path: method, StatusCode: resp.Status, ContentType: resp.ContentType,
			Problem: fmt.Sprintf("body larger than %d bytes", MaxResponseBytes)}
	case err != nil:
		err = &TransportError{Platform: Platform, Path: method, Err: err}
	default:
		fields = append(fields, zap.Int("status", resp.Status))
		err = decode(a.pub, method, resp, out)
	}
	var ae *Error
	var se *SignatureError
	switch {
	case errors.As(err, &ae):
		fields = append(fields, zap.String("code", ae.Code), zap.String("sub_code", ae.SubCode), zap.Stringer("kind", ae.Kind()))
		switch ae.Kind() {
		case provider.KindMisconfigured:
			c.log.Error("alipay call: Alipay refused our request; check this app's appid, private_key (and the public key uploaded to Alipay) in APP_APPS", fields...)
		case provider.KindUnavailable, provider.KindUnknown:
			c.log.Warn("alipay call", fields...)
		default:
			c.log.Info("alipay call", fields...)
		}
	case errors.As(err, &se):
		c.log.Error("alipay call: the answer's signature does not verify; check this app's alipay_public_key in APP_APPS", append(fields, zap.Error(err))...)
	case err != nil:
		c.log.Warn("alipay call", append(fields, zap.Error(err))...)
	default:
		c.log.Info("alipay call", append(fields, zap.String("code", "10000"))...)
	}
	return err
}

// status is the code/msg/sub_code/sub_msg of an answer node.
type status struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	SubMsg  string `json:"sub_msg"`
}

// decode reads a gateway answer whatever its Content-Type: the method's
// response node, verified over its exact bytes, then its code; else the
// error_response (verified when signed: Alipay cannot sign for an app it
// does not know [U]).
func decode(pub *rsa.PublicKey, method string, resp platformhttp.Response, out any) error {
	body := bytes.TrimPrefix(bytes.TrimSpace(resp.Body), []byte("\xef\xbb\xbf"))
	bad := func(problem string) error {
		return &ResponseError{Platform: Platform, Path: method, StatusCode: resp.Status, ContentType: resp.ContentType, Problem: problem}
	}
	if len(body) == 0 {
		return bad("empty body")
	}
	g, err := parseGatewayBody(body)
	if err != nil {
		return bad(err.Error())
	}
	sig, signed, err := g.sign()
	if err != nil {
		return bad(err.Error())
	}
	node, isMethod := g.members[ResponseNode(method)]
	if !isMethod {
		errNode, ok := g.members["error_response"]
		if !ok {
			if resp.Status < 200 || resp.Status > 299 {
				return bad("HTTP status without an Alipay answer")
			}
			return bad("no " + ResponseNode(method) + " or error_response")
		}
		node = errNode
	}
	if isMethod || signed {
		if !signed {
			return &SignatureError{Method: method, Problem: "the answer is not signed"}
		}
		if err := Verify(pub, node, sig); err != nil {
			return &SignatureError{Method: method, Problem: strings.TrimPrefix(err.Error(), "alipay: ")}
		}
	}
	if len(node) == 0 || node[0] != '{' {
		return bad("the answer node is not an object")
	}
	var st status
	if err := json.Unmarshal(node, &st); err != nil {
		return bad("unreadable answer node: " + err.Error())
	}
	if !isMethod || (st.Code != "" && st.Code != "10000") {
		if st.Code == "" && st.SubCode == "" {
			return bad("error_response without code")
		}
		return &Error{Method: method, Code: st.Code, Msg: st.Msg, SubCode: st.SubCode, SubMsg: st.SubMsg}
	}
	if resp.Status < 200 || resp.Status > 299 {
		return bad("HTTP error status with a success")
	}
	if err := json.Unmarshal(node, out); err != nil {
		return bad("unexpected answer: " + err.Error())
	}
	return nil
}

// phoneContent is my.getPhoneNumber's response string.
type phoneContent struct {
	Response    string `json:"response"`
	Sign        string `json:"sign"`
	SignType    string `json:"sign_type"`
	EncryptType string `json:"encrypt_type"`
	Charset     string `json:"charset"`
}

// PhoneNumber verifies my.getPhoneNumber's response string with the app's
// alipay_public_key — over the ciphertext wrapped in double quotes, as
// Alipay signs it [C] — then decrypts it with aes_key (AES-CBC, zero IV) and
// reads {"code":"10000","msg":"Success","mobile":"…"}.
//
// Errors: a response string that is not the expected JSON wraps
// wxcrypto.ErrMalformed; a bad signature wraps ErrBadSignature
// (provider.KindRefused: Alipay did not vouch for this data); an app without
// aes_key, or content that does not decrypt under it, is KindMisconfigured;
// a code other than 10000 is an *Error (isv.invalid-auth-relations: the app
// lacks the phone capability, KindMisconfigured).
func (c *HTTPClient) PhoneNumber(_ context.Context, appid, response string) (provider.Phone, error) {
	a, err := c.app(appid)
	if err != nil {
		return provider.Phone{}, err
	}
	refuse := func(kind provider.Kind, err error) error {
		return &provider.Error{Platform: Platform, Kind: kind, Message: "my.getPhoneNumber", Err: err}
	}
	if a.aes == nil {
		return provider.Phone{}, refuse(provider.KindMisconfigured, errors.New("the app has no aes_key: set the console's AES key to receive phone numbers"))
	}
	var pc phoneContent
	dec := json.NewDecoder(strings.NewReader(response))
	if err := dec.Decode(&pc); err != nil || pc.Response == "" {
		return provider.Phone{}, refuse(provider.KindUnknown, fmt.Errorf("%w: the phone response must be my.getPhoneNumber's JSON string with response and sign", wxcrypto.ErrMalformed))
	}
	if pc.SignType != "" && pc.SignType != "RSA2" {
		return provider.Phone{}, refuse(provider.KindRefused, fmt.Errorf("%w: sign_type %q, want RSA2", ErrBadSignature, printable(pc.SignType)))
	}
	encrypted := !strings.HasPrefix(pc.Response, "{")
	signedContent := pc.Response
	if encrypted {
		signedContent = `"` + pc.Response + `"`
	}
	if err := Verify(a.pub, []byte(signedContent), pc.Sign); err != nil {
		return provider.Phone{}, refuse(provider.KindRefused, err)
	}
	plain := []byte(pc.Response)
	if encrypted {
		if plain, err = decryptAES(a.aes, pc.Response); err != nil {
			return provider.Phone{}, refuse(provider.KindMisconfigured, fmt.Errorf("signed by Alipay but %v: check the app's aes_key", err))
		}
	}
	var content struct {
		Code    string `json:"code"`
		Msg     string `json:"msg"`
		SubCode string `json:"subCode"`
		SubMsg  string `json:"subMsg"`
		Mobile  string `json:"mobile"`
	}
	if err := json.Unmarshal(plain, &content); err != nil {
		return provider.Phone{}, refuse(provider.KindMisconfigured, errors.New("signed by Alipay but not JSON after decryption: check the app's aes_key"))
	}
	if content.Code != "10000" {
		return provider.Phone{}, &Error{Method: "my.getPhoneNumber", Code: content.Code, Msg: content.Msg, SubCode: content.SubCode, SubMsg: content.SubMsg}
	}
	if content.Mobile == "" {
		return provider.Phone{}, refuse(provider.KindUnknown, errors.New("success without mobile"))
	}
	// [U] Alipay gives the number alone; its country code is not stated.
	return provider.Phone{Number: content.Mobile, PureNumber: content.Mobile}, nil
}

func printable(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	return strings.ToValidUTF8(s, "?")
}
