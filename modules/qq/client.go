package qq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// API paths, relative to an app's base URL.
const (
	PathCode2Session = "/sns/jscode2session"
	PathToken        = "/api/getToken"
)

// DefaultBaseURL is QQ's API root, used when config.App.BaseURL is empty.
const DefaultBaseURL = "https://api.q.qq.com"

// MaxResponseBytes caps the body read from QQ; a larger one is an error.
const MaxResponseBytes = platformhttp.MaxResponseBytes

// DefaultTimeout bounds each call unless WithTimeout says otherwise.
const DefaultTimeout = platformhttp.DefaultTimeout

// Client is what the QQ provider needs from QQ.
type Client interface {
	// Code2Session exchanges a qq.login code of app appid for the user's
	// ids and session key.
	Code2Session(ctx context.Context, appid, code string) (Session, error)
	// AccessToken returns app appid's current server access token, for
	// calling QQ's other server APIs.
	AccessToken(ctx context.Context, appid string) (string, error)
}

var _ Client = (*HTTPClient)(nil)

// Session is the answer of jscode2session.
type Session struct {
	OpenID string
	// UnionID is set when the app belongs to a QQ Connect account and the
	// user meets QQ's conditions; it is shared by that account's apps only.
	UnionID    string
	SessionKey provider.Secret
}

// MarshalLogObject logs the ids, never the session key.
func (s Session) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("openid", s.OpenID)
	if s.UnionID != "" {
		enc.AddString("unionid", s.UnionID)
	}
	return nil
}

// HTTPClient is the Client that speaks to QQ (or its emulator) over HTTP,
// for every QQ app of the deployment.
type HTTPClient struct {
	*platformhttp.Apps // the apps and their tokens (Tokens, AccessToken), the HTTP client
}

type app = platformhttp.App

// Option adjusts NewClient.
type Option func(*platformhttp.Options)

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(o *platformhttp.Options) { o.Logger = l } }

// WithTracerProvider makes every call a client span of tp, without its
// query string (which carries secrets, codes and access tokens).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *platformhttp.Options) { o.Tracer = tp }
}

// WithTokenObserver makes o hear every access-token fetch (metrics).
func WithTokenObserver(obs platformtoken.Observer) Option {
	return func(o *platformhttp.Options) { o.TokenObs = obs }
}

// WithHTTPClient sets the HTTP client; NewClient refuses one that skips TLS
// verification, and stops it from following redirects.
func WithHTTPClient(c *http.Client) Option { return func(o *platformhttp.Options) { o.HTTPClient = c } }

// WithTimeout bounds every call (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *platformhttp.Options) { o.Timeout = d } }

// WithTokenStore sets where access tokens are shared (default: a
// platformtoken.MemoryStore).
func WithTokenStore(s platformtoken.Store) Option {
	return func(o *platformhttp.Options) { o.TokenStore = s }
}

// WithClock sets the clock that decides when a token is due for refresh (tests).
func WithClock(now func() time.Time) Option { return func(o *platformhttp.Options) { o.Now = now } }

// WithTokenLockTTL sets how long one instance may hold an app's token fetch
// lock (default: twice the timeout, at least one second).
func WithTokenLockTTL(d time.Duration) Option { return func(o *platformhttp.Options) { o.LockTTL = d } }

// NewClient builds the client for the QQ apps among apps (others are
// ignored): each needs an appid and a secret, and may set a base URL.
func NewClient(apps config.Apps, opts ...Option) (*HTTPClient, error) {
	var o platformhttp.Options
	for _, opt := range opts {
		opt(&o)
	}
	c := &HTTPClient{}
	shared, err := platformhttp.NewApps(Platform, "QQ", DefaultBaseURL, apps, o, c.fetchAccessToken)
	if err != nil {
		return nil, err
	}
	c.Apps = shared
	return c, nil
}

// Code2Session calls GET /sns/jscode2session. A "success" without openid or
// session_key is a *ResponseError, never a Session with empty fields.
func (c *HTTPClient) Code2Session(ctx context.Context, appid, code string) (Session, error) {
	a, err := c.App(appid)
	if err != nil {
		return Session{}, err
	}
	if code == "" {
		return Session{}, &Error{Path: PathCode2Session, Code: 41008, Message: "missing code (empty code not sent to QQ)"}
	}
	var out struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
		UnionID    string `json:"unionid"`
	}
	query := url.Values{"appid": {a.Config.AppID}, "secret": {a.Config.Secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	if err := c.call(ctx, a, PathCode2Session, query, &out); err != nil {
		return Session{}, err
	}
	if out.OpenID == "" || out.SessionKey == "" {
		return Session{}, &ResponseError{Platform: Platform, Path: PathCode2Session, StatusCode: http.StatusOK, Problem: "success without openid or session_key"}
	}
	return Session{OpenID: out.OpenID, UnionID: out.UnionID, SessionKey: provider.Secret(out.SessionKey)}, nil
}

// fetchAccessToken calls GET /api/getToken.
func (c *HTTPClient) fetchAccessToken(ctx context.Context, a *app) (string, time.Duration, error) {
	var out struct {
		AccessToken string      `json:"access_token"`
		ExpiresIn   json.Number `json:"expires_in"`
	}
	query := url.Values{"grant_type": {"client_credential"}, "appid": {a.Config.AppID}, "secret": {a.Config.Secret}}
	if err := c.call(ctx, a, PathToken, query, &out); err != nil {
		return "", 0, err
	}
	secs, err := out.ExpiresIn.Int64()
	if out.AccessToken == "" || err != nil || secs <= 0 {
		return "", 0, &ResponseError{Platform: Platform, Path: PathToken, StatusCode: http.StatusOK, Problem: "success without access_token or expires_in"}
	}
	return out.AccessToken, time.Duration(secs) * time.Second, nil
}

// call performs a GET within the client timeout, checks errcode and decodes
// the answer into out. It logs one line, without the query; the AppSecret
// is scrubbed from anything kept or logged.
func (c *HTTPClient) call(ctx context.Context, a *app, path string, query url.Values, out any) error {
	secrets := []string{a.Config.Secret}
	start := time.Now()
	resp, err := platformhttp.Do(ctx, c.HTTP, c.Timeout, platformhttp.Request{Method: http.MethodGet, URL: a.Base + path + "?" + query.Encode()}, MaxResponseBytes)
	fields := []zap.Field{zap.String("appid", a.Config.AppID), zap.String("path", path), zap.Duration("duration", time.Since(start))}
	switch {
	case errors.Is(err, platformhttp.ErrTooLarge):
		err = &ResponseError{Platform: Platform, Path: path, StatusCode: resp.Status, ContentType: resp.ContentType,
			Problem: fmt.Sprintf("body larger than %d bytes", MaxResponseBytes)}
	case err != nil:
		err = &TransportError{Platform: Platform, Path: path, Err: platformhttp.ScrubError(err, secrets)}
	default:
		fields = append(fields, zap.Int("status", resp.Status))
		err = decode(path, resp, out, secrets)
	}
	var qe *Error
	switch {
	case errors.As(err, &qe):
		fields = append(fields, zap.Int("errcode", qe.Code), zap.Stringer("kind", qe.Kind()))
		switch qe.Kind() {
		case provider.KindMisconfigured:
			c.Log.Error("qq call: QQ refused our credentials; check this app's appid and secret in APP_APPS", fields...)
		case provider.KindUnavailable, provider.KindUnknown:
			c.Log.Warn("qq call", fields...)
		default:
			c.Log.Info("qq call", fields...)
		}
	case err != nil:
		c.Log.Warn("qq call", append(fields, zap.Error(err))...)
	default:
		c.Log.Info("qq call", append(fields, zap.Int("errcode", 0))...)
	}
	return err
}

// decode reads a QQ answer whatever its Content-Type: errcode first, then
// the HTTP status, then the payload.
func decode(path string, resp platformhttp.Response, out any, secrets []string) error {
	body := bytes.TrimPrefix(bytes.TrimSpace(resp.Body), []byte("\xef\xbb\xbf"))
	bad := func(problem string) error {
		return &ResponseError{Platform: Platform, Path: path, StatusCode: resp.Status, ContentType: resp.ContentType,
			Problem: platformhttp.Scrub(problem, secrets)}
	}
	if len(body) == 0 {
		return bad("empty body")
	}
	var st struct {
		ErrCode json.Number `json:"errcode"`
		ErrMsg  string      `json:"errmsg"`
	}
	if body[0] != '{' {
		return bad("not a JSON object")
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return bad("unreadable JSON: " + err.Error())
	}
	code := int64(0)
	if st.ErrCode != "" {
		n, err := st.ErrCode.Int64()
		if err != nil {
			return bad("errcode is not an integer")
		}
		code = n
	}
	if code != 0 {
		return &Error{Path: path, Code: int(code), Message: platformhttp.Scrub(st.ErrMsg, secrets)}
	}
	if resp.Status < 200 || resp.Status > 299 {
		return bad("HTTP status without errcode")
	}
	if err := json.Unmarshal(body, out); err != nil {
		return bad("unexpected JSON: " + err.Error())
	}
	return nil
}
