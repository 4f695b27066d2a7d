package wechat

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// API paths, relative to config.WeChat.BaseURL.
const (
	pathCode2Session    = "/sns/jscode2session"
	pathPhoneNumber     = "/wxa/business/getuserphonenumber"
	pathCheckSession    = "/wxa/checksession"
	pathResetSessionKey = "/wxa/resetusersessionkey"
	pathToken           = "/cgi-bin/token"
	pathStableToken     = "/cgi-bin/stable_token"
	pathOAuthToken      = "/sns/oauth2/access_token"
	pathUserInfo        = "/sns/userinfo"
)

// MaxResponseBytes caps the body read from WeChat; a larger one is an error.
const MaxResponseBytes = 1 << 20

// DefaultTimeout bounds each call when config.WeChat.Timeout is not positive.
const DefaultTimeout = 5 * time.Second

// Client is what the HTTP handlers need from WeChat.
type Client interface {
	// AppID is the mini program this client speaks for.
	AppID() string
	// Code2Session exchanges a wx.login code for the user's ids and session key.
	Code2Session(ctx context.Context, code string) (Session, error)
	// GetPhoneNumber exchanges a getPhoneNumber button code for the user's phone number.
	GetPhoneNumber(ctx context.Context, code string) (PhoneInfo, error)
	// CheckSessionKey asks WeChat whether sessionKey is still the user's current one;
	// nil means it is, KindSessionKey means it is not.
	CheckSessionKey(ctx context.Context, openid, sessionKey string) error
	// ResetUserSessionKey makes WeChat issue a new session key for the user,
	// proving possession of the current one.
	ResetUserSessionKey(ctx context.Context, openid, sessionKey string) (Session, error)
	// AccessToken returns the app's current access token, for calling other WeChat APIs.
	AccessToken(ctx context.Context) (string, error)
	// OAuthAccessToken exchanges the code of an OAuth app (Official Account
	// H5 page, mobile app, website QR login) for the user's token and ids.
	OAuthAccessToken(ctx context.Context, code string) (OAuthToken, error)
	// OAuthUserInfo reads the profile an snsapi_userinfo token may read.
	OAuthUserInfo(ctx context.Context, token OAuthToken) (OAuthUser, error)
}

var _ Client = (*HTTPClient)(nil)

// HTTPClient is the Client that speaks to WeChat (or the emulator) over HTTP.
type HTTPClient struct {
	appID    string
	secret   string
	baseURL  string
	stable   bool
	timeout  time.Duration
	http     *http.Client
	log      *zap.Logger
	tokens   *platformtoken.Manager
	observer Observer
}

// Observer hears every WeChat call (metrics; modules/metrics provides
// one). It must be quick.
type Observer interface {
	// WeChatCalled is one call for appid of an API path (such as
	// "/sns/jscode2session"; never the query) that took d. result is
	// "0" for a success, WeChat's errcode ("40029"), or, when no usable
	// answer came back, "transport" or "bad_response".
	WeChatCalled(appid, path, result string, d time.Duration)
}

// Option adjusts NewClient.
type Option func(*options)

type options struct {
	logger        *zap.Logger
	httpClient    *http.Client
	store         platformtoken.Store
	now           func() time.Time
	lockTTL       time.Duration
	observer      Observer
	tokenObserver platformtoken.Observer
	tracer        trace.TracerProvider
}

// WithObserver makes o hear every call (metrics).
func WithObserver(o Observer) Option { return func(o2 *options) { o2.observer = o } }

// WithTokenObserver makes o hear every access-token fetch (metrics).
func WithTokenObserver(o platformtoken.Observer) Option {
	return func(o2 *options) { o2.tokenObserver = o }
}

// WithTracerProvider makes every call a client span of tp, without its
// query string (which carries the AppSecret, codes and access tokens).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tracer = tp } }

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient sets the HTTP client; NewClient refuses one that skips TLS
// verification, and stops it from following redirects.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithTokenStore sets where access tokens are shared (default: a
// platformtoken.MemoryStore).
func WithTokenStore(s platformtoken.Store) Option { return func(o *options) { o.store = s } }

// WithClock sets the clock that decides when a token is due for refresh (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithTokenLockTTL sets how long one instance may hold the fleet's token
// fetch lock (default: twice the call timeout, at least one second).
func WithTokenLockTTL(d time.Duration) Option { return func(o *options) { o.lockTTL = d } }

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.store == nil {
		o.store = platformtoken.NewMemoryStore()
	}
	return o
}

// NewClient builds the client for cfg: AppID, Secret, BaseURL, Timeout and
// StableToken are used. Its token manager shares tokens through the
// WithTokenStore store.
func NewClient(cfg config.WeChat, opts ...Option) (*HTTPClient, error) {
	o := collect(opts)
	if cfg.AppID == "" || cfg.Secret == "" {
		return nil, errors.New("wechat: AppID and Secret are required")
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("wechat: base URL %q is not an http(s) URL without a query", cfg.BaseURL)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	hc, err := httpClient(o.httpClient)
	if err != nil {
		return nil, err
	}
	c := &HTTPClient{
		appID:    cfg.AppID,
		secret:   cfg.Secret,
		baseURL:  base,
		stable:   cfg.StableToken,
		timeout:  timeout,
		http:     platformhttp.TracedClient(hc, o.tracer, "wechat"),
		log:      o.logger.Named("wechat"),
		observer: o.observer,
	}
	if o.lockTTL <= 0 {
		o.lockTTL = max(2*timeout, time.Second)
	}
	c.tokens = platformtoken.New(cfg.AppID, o.store, c.fetchAccessToken,
		platformtoken.WithLogger(c.log), platformtoken.WithClock(o.now), platformtoken.WithLockTTL(o.lockTTL),
		platformtoken.WithObserver(o.tokenObserver),
		platformtoken.WithRejected(func(err error) bool { return IsKind(err, KindAccessToken) }),
		platformtoken.WithUnavailable(func(err error) error { return &TransportError{Path: "access token", Err: err} }))
	return c, nil
}

// httpClient returns a copy of custom (or a fresh client) that never follows
// redirects, refusing one configured to skip TLS verification.
func httpClient(custom *http.Client) (*http.Client, error) {
	var hc http.Client
	if custom != nil {
		hc = *custom
		if t, ok := hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil && t.TLSClientConfig.InsecureSkipVerify {
			return nil, errors.New("wechat: refusing an HTTP client that skips TLS verification")
		}
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		t.MaxIdleConnsPerHost = 64
		hc.Transport = t
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, nil
}

// CloseIdleConnections closes the keep-alive connections the client holds.
func (c *HTTPClient) CloseIdleConnections() { c.http.CloseIdleConnections() }

// AppID is the mini program this client speaks for.
func (c *HTTPClient) AppID() string { return c.appID }

// Tokens is the client's access-token manager.
func (c *HTTPClient) Tokens() *platformtoken.Manager { return c.tokens }

// AccessToken returns the app's current access token.
func (c *HTTPClient) AccessToken(ctx context.Context) (string, error) {
	return c.tokens.AccessToken(ctx)
}

// Code2Session calls GET /sns/jscode2session. A "success" without openid or
// session_key is a *ResponseError, never a Session with empty fields.
func (c *HTTPClient) Code2Session(ctx context.Context, code string) (Session, error) {
	if code == "" {
		return Session{}, &Error{Path: pathCode2Session, Code: 41008, Message: "missing code (empty code not sent to WeChat)"}
	}
	var out struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
		UnionID    string `json:"unionid"`
	}
	err := c.call(ctx, request{
		method: http.MethodGet,
		path:   pathCode2Session,
		query: url.Values{
			"appid":      {c.appID},
			"secret":     {c.secret},
			"js_code":    {code},
			"grant_type": {"authorization_code"},
		},
	}, &out)
	if err != nil {
		return Session{}, err
	}
	if out.OpenID == "" || out.SessionKey == "" {
		return Session{}, &ResponseError{Path: pathCode2Session, StatusCode: http.StatusOK, Problem: "success without openid or session_key"}
	}
	return Session{OpenID: out.OpenID, UnionID: out.UnionID, SessionKey: SessionKey(out.SessionKey)}, nil
}

// GetPhoneNumber calls POST /wxa/business/getuserphonenumber.
func (c *HTTPClient) GetPhoneNumber(ctx context.Context, code string) (PhoneInfo, error) {
	if code == "" {
		return PhoneInfo{}, &Error{Path: pathPhoneNumber, Code: 41008, Message: "missing code (empty code not sent to WeChat)"}
	}
	type wire struct {
		PhoneInfo *wxcrypto.PhoneInfo `json:"phone_info"`
	}
	var out wire
	err := c.tokens.Do(ctx, func(ctx context.Context, token string) error {
		out = wire{}
		return c.call(ctx, request{
			method:  http.MethodPost,
			path:    pathPhoneNumber,
			query:   url.Values{"access_token": {token}},
			body:    map[string]string{"code": code},
			secrets: []string{token},
		}, &out)
	})
	if err != nil {
		return PhoneInfo{}, err
	}
	p := out.PhoneInfo
	if p == nil || (p.PhoneNumber == "" && p.PurePhoneNumber == "") {
		return PhoneInfo{}, &ResponseError{Path: pathPhoneNumber, StatusCode: http.StatusOK, Problem: "success without phone_info"}
	}
	if p.Watermark.AppID != "" && p.Watermark.AppID != c.appID {
		return PhoneInfo{}, &ResponseError{Path: pathPhoneNumber, StatusCode: http.StatusOK, Problem: "watermark names another appid"}
	}
	return PhoneInfo{
		PhoneNumber:     p.PhoneNumber,
		PurePhoneNumber: p.PurePhoneNumber,
		CountryCode:     string(p.CountryCode),
		Watermark:       Watermark{AppID: p.Watermark.AppID, Timestamp: p.Watermark.Timestamp},
	}, nil
}

// CheckSessionKey calls GET /wxa/checksession, signed with the session key.
func (c *HTTPClient) CheckSessionKey(ctx context.Context, openid, sessionKey string) error {
	if openid == "" || sessionKey == "" {
		return &Error{Path: pathCheckSession, Code: 40097, Message: "invalid args: empty openid or session_key (not sent to WeChat)"}
	}
	return c.tokens.Do(ctx, func(ctx context.Context, token string) error {
		return c.call(ctx, request{
			method:  http.MethodGet,
			path:    pathCheckSession,
			query:   signedQuery(token, openid, sessionKey),
			secrets: []string{token, sessionKey},
		}, nil)
	})
}

// ResetUserSessionKey calls GET /wxa/resetusersessionkey, signed with the
// current session key, and returns the new one.
func (c *HTTPClient) ResetUserSessionKey(ctx context.Context, openid, sessionKey string) (Session, error) {
	if openid == "" || sessionKey == "" {
		return Session{}, &Error{Path: pathResetSessionKey, Code: 40097, Message: "invalid args: empty openid or session_key (not sent to WeChat)"}
	}
	type wire struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}
	var out wire
	err := c.tokens.Do(ctx, func(ctx context.Context, token string) error {
		out = wire{}
		return c.call(ctx, request{
			method:  http.MethodGet,
			path:    pathResetSessionKey,
			query:   signedQuery(token, openid, sessionKey),
			secrets: []string{token, sessionKey},
		}, &out)
	})
	if err != nil {
		return Session{}, err
	}
	if out.SessionKey == "" || (out.OpenID != "" && out.OpenID != openid) {
		return Session{}, &ResponseError{Path: pathResetSessionKey, StatusCode: http.StatusOK, Problem: "success without session_key or for another openid"}
	}
	return Session{OpenID: openid, SessionKey: SessionKey(out.SessionKey)}, nil
}

// OAuthAccessToken calls GET /sns/oauth2/access_token.
func (c *HTTPClient) OAuthAccessToken(ctx context.Context, code string) (OAuthToken, error) {
	if code == "" {
		return OAuthToken{}, &Error{Path: pathOAuthToken, Code: 41008, Message: "missing code (empty code not sent to WeChat)"}
	}
	var out struct {
		AccessToken  string  `json:"access_token"`
		ExpiresIn    flexInt `json:"expires_in"`
		RefreshToken string  `json:"refresh_token"`
		OpenID       string  `json:"openid"`
		Scope        string  `json:"scope"`
		UnionID      string  `json:"unionid"`
		Snapshot     flexInt `json:"is_snapshotuser"`
	}
	err := c.call(ctx, request{
		method: http.MethodGet,
		path:   pathOAuthToken,
		query: url.Values{
			"appid":      {c.appID},
			"secret":     {c.secret},
			"code":       {code},
			"grant_type": {"authorization_code"},
		},
	}, &out)
	if err != nil {
		return OAuthToken{}, err
	}
	if out.AccessToken == "" || out.OpenID == "" {
		return OAuthToken{}, &ResponseError{Path: pathOAuthToken, StatusCode: http.StatusOK, Problem: "success without access_token or openid"}
	}
	var scopes []string
	for _, s := range strings.Split(out.Scope, ",") {
		if s = strings.TrimSpace(s); s != "" {
			scopes = append(scopes, s)
		}
	}
	return OAuthToken{
		AccessToken: provider.Secret(out.AccessToken), RefreshToken: provider.Secret(out.RefreshToken),
		ExpiresIn: time.Duration(out.ExpiresIn) * time.Second,
		OpenID:    out.OpenID, UnionID: out.UnionID, Scopes: scopes, Snapshot: out.Snapshot == 1,
	}, nil
}

// OAuthUserInfo calls GET /sns/userinfo with the user's OAuth token.
func (c *HTTPClient) OAuthUserInfo(ctx context.Context, token OAuthToken) (OAuthUser, error) {
	var out struct {
		OpenID     string `json:"openid"`
		UnionID    string `json:"unionid"`
		Nickname   string `json:"nickname"`
		HeadImgURL string `json:"headimgurl"`
	}
	tok := token.AccessToken.Reveal()
	err := c.call(ctx, request{
		method:  http.MethodGet,
		path:    pathUserInfo,
		query:   url.Values{"access_token": {tok}, "openid": {token.OpenID}, "lang": {"zh_CN"}},
		secrets: []string{tok},
	}, &out)
	if err != nil {
		return OAuthUser{}, err
	}
	if out.OpenID != "" && out.OpenID != token.OpenID {
		return OAuthUser{}, &ResponseError{Path: pathUserInfo, StatusCode: http.StatusOK, Problem: "profile of another openid"}
	}
	return OAuthUser{OpenID: token.OpenID, UnionID: out.UnionID, Nickname: out.Nickname, AvatarURL: out.HeadImgURL}, nil
}

func signedQuery(token, openid, sessionKey string) url.Values {
	return url.Values{
		"access_token": {token},
		"openid":       {openid},
		"signature":    {wxcrypto.SessionSignature(sessionKey, nil)}, // GET: the body is ""
		"sig_method":   {"hmac_sha256"},
	}
}

// fetchAccessToken gets a new token from stable_token or the classic token API.
func (c *HTTPClient) fetchAccessToken(ctx context.Context) (string, time.Duration, error) {
	var out struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   flexInt `json:"expires_in"`
	}
	r := request{secrets: []string{c.secret}}
	if c.stable {
		r.method, r.path = http.MethodPost, pathStableToken
		r.body = struct {
			GrantType    string `json:"grant_type"`
			AppID        string `json:"appid"`
			Secret       string `json:"secret"`
			ForceRefresh bool   `json:"force_refresh"`
		}{"client_credential", c.appID, c.secret, false}
	} else {
		r.method, r.path = http.MethodGet, pathToken
		r.query = url.Values{"grant_type": {"client_credential"}, "appid": {c.appID}, "secret": {c.secret}}
	}
	if err := c.call(ctx, r, &out); err != nil {
		return "", 0, err
	}
	if out.AccessToken == "" || out.ExpiresIn <= 0 {
		return "", 0, &ResponseError{Path: r.path, StatusCode: http.StatusOK, Problem: "success without access_token or expires_in"}
	}
	return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
}

// request is one WeChat call.
type request struct {
	method, path string
	query        url.Values
	body         any      // sent as JSON when not nil
	secrets      []string // scrubbed from anything kept or logged (the AppSecret always is)
}

// call performs r within the client timeout, checks errcode and decodes the
// answer into out (when not nil). It logs one line.
func (c *HTTPClient) call(ctx context.Context, r request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	secrets := append([]string{c.secret}, r.secrets...)
	start := time.Now()
	status, ctype, body, err := c.roundTrip(ctx, r)
	fields := []zap.Field{zap.String("path", r.path), zap.Duration("duration", time.Since(start))}
	if err != nil {
		var re *ResponseError
		if !errors.As(err, &re) {
			err = &TransportError{Path: r.path, Err: scrubError(withoutURL(err), secrets)}
		}
		c.log.Warn("wechat call", append(fields, zap.Error(err))...)
		c.observe(r.path, err, time.Since(start))
		return err
	}
	fields = append(fields, zap.Int("status", status))
	err = decode(r.path, status, ctype, body, out, secrets)
	var we *Error
	switch {
	case errors.As(err, &we):
		fields = append(fields, zap.Int("errcode", we.Code), zap.String("rid", we.RID), zap.Stringer("kind", we.Kind()))
		switch we.Kind() {
		case KindMisconfigured, KindUnavailable, KindUnknown, KindAccessToken:
			c.log.Warn("wechat call", fields...)
		default:
			c.log.Info("wechat call", fields...)
		}
	case err != nil:
		c.log.Warn("wechat call", append(fields, zap.Error(err))...)
	default:
		c.log.Info("wechat call", append(fields, zap.Int("errcode", 0))...)
	}
	c.observe(r.path, err, time.Since(start))
	return err
}

// observe tells the observer how a call ended.
func (c *HTTPClient) observe(path string, err error, d time.Duration) {
	if c.observer == nil {
		return
	}
	result := "0"
	var we *Error
	var re *ResponseError
	switch {
	case errors.As(err, &we):
		result = strconv.Itoa(we.Code)
	case errors.As(err, &re):
		result = "bad_response"
	case err != nil:
		result = "transport"
	}
	c.observer.WeChatCalled(c.appID, path, result, d)
}

func (c *HTTPClient) roundTrip(ctx context.Context, r request) (status int, ctype string, body []byte, err error) {
	target := c.baseURL + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var payload io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, "", nil, fmt.Errorf("encode request: %w", err)
		}
		payload = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, payload)
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	ctype = resp.Header.Get("Content-Type")
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return resp.StatusCode, ctype, nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > MaxResponseBytes {
		return resp.StatusCode, ctype, nil, &ResponseError{Path: r.path, StatusCode: resp.StatusCode, ContentType: ctype,
			Problem: fmt.Sprintf("body larger than %d bytes", MaxResponseBytes)}
	}
	return resp.StatusCode, ctype, body, nil
}

// apiStatus is the errcode/errmsg pair every answer may carry.
type apiStatus struct {
	ErrCode flexInt `json:"errcode"`
	ErrMsg  string  `json:"errmsg"`
}

// decode reads a WeChat answer whatever its Content-Type: errcode first,
// then the HTTP status, then the payload.
func decode(path string, status int, ctype string, body []byte, out any, secrets []string) error {
	body = bytes.TrimPrefix(bytes.TrimSpace(body), []byte("\xef\xbb\xbf"))
	bad := func(problem string) error {
		return &ResponseError{Path: path, StatusCode: status, ContentType: ctype, Problem: scrub(problem, secrets)}
	}
	if len(body) == 0 {
		return bad("empty body")
	}
	var st apiStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return bad("not a JSON object: " + err.Error())
	}
	if st.ErrCode != 0 {
		msg := scrub(st.ErrMsg, secrets)
		return &Error{Path: path, Code: int(st.ErrCode), Message: msg, RID: requestID(msg)}
	}
	if status < 200 || status > 299 {
		return bad("HTTP status without errcode")
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return bad("unexpected JSON: " + err.Error())
		}
	}
	return nil
}

// scrubError returns err unchanged unless its text holds a secret, in which
// case only the scrubbed text is kept.
func scrubError(err error, secrets []string) error {
	s := err.Error()
	if clean := scrub(s, secrets); clean != s {
		return errors.New(clean)
	}
	return err
}
