package douyin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
	PathCode2Session = "/api/apps/v2/jscode2session"
	PathToken        = "/api/apps/v2/token"
)

// DefaultBaseURL is Douyin's API root, used when config.App.BaseURL is empty.
const DefaultBaseURL = "https://developer.toutiao.com"

// MaxResponseBytes caps the body read from Douyin; a larger one is an error.
const MaxResponseBytes = platformhttp.MaxResponseBytes

// DefaultTimeout bounds each call unless WithTimeout says otherwise.
const DefaultTimeout = platformhttp.DefaultTimeout

// Client is what the Douyin provider needs from Douyin.
type Client interface {
	// Code2Session exchanges tt.login's code and/or anonymousCode of app
	// appid (at least one) for the user's ids and session key.
	Code2Session(ctx context.Context, appid, code, anonymousCode string) (Session, error)
	// AccessToken returns app appid's current server access token, for
	// calling Douyin's other server APIs.
	AccessToken(ctx context.Context, appid string) (string, error)
}

var _ Client = (*HTTPClient)(nil)

// Session is the answer of jscode2session.
type Session struct {
	// OpenID, UnionID and SessionKey come when a code was exchanged.
	OpenID string
	// UnionID is scoped to the developer account and the host app (Douyin,
	// Toutiao, …): it differs between host apps for the same person.
	UnionID    string
	SessionKey provider.Secret
	// AnonymousOpenID comes when an anonymous code was exchanged: one per
	// device.
	AnonymousOpenID string
}

// MarshalLogObject logs the ids, never the session key.
func (s Session) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	if s.OpenID != "" {
		enc.AddString("openid", s.OpenID)
	}
	if s.UnionID != "" {
		enc.AddString("unionid", s.UnionID)
	}
	if s.AnonymousOpenID != "" {
		enc.AddString("anonymous_openid", s.AnonymousOpenID)
	}
	return nil
}

// HTTPClient is the Client that speaks to Douyin (or its emulator) over
// HTTP, for every Douyin app of the deployment.
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

// NewClient builds the client for the Douyin apps among apps (others are
// ignored): each needs an appid and a secret, and may set a base URL.
func NewClient(apps config.Apps, opts ...Option) (*HTTPClient, error) {
	var o platformhttp.Options
	for _, opt := range opts {
		opt(&o)
	}
	c := &HTTPClient{}
	shared, err := platformhttp.NewApps(Platform, "Douyin", DefaultBaseURL, apps, o, c.fetchAccessToken)
	if err != nil {
		return nil, err
	}
	c.Apps = shared
	return c, nil
}

// Code2Session calls POST /api/apps/v2/jscode2session. A "success" without
// the ids the sent codes promise (openid and session_key for code,
// anonymous_openid for anonymousCode) is a *ResponseError.
func (c *HTTPClient) Code2Session(ctx context.Context, appid, code, anonymousCode string) (Session, error) {
	a, err := c.App(appid)
	if err != nil {
		return Session{}, err
	}
	if code == "" && anonymousCode == "" {
		return Session{}, &Error{Path: PathCode2Session, Code: 40014, Message: "neither code nor anonymous_code (nothing sent to Douyin)"}
	}
	var out struct {
		SessionKey      string `json:"session_key"`
		OpenID          string `json:"openid"`
		AnonymousOpenID string `json:"anonymous_openid"`
		UnionID         string `json:"unionid"`
	}
	body := map[string]string{"appid": a.Config.AppID, "secret": a.Config.Secret, "code": code, "anonymous_code": anonymousCode}
	if err := c.call(ctx, a, PathCode2Session, body, &out); err != nil {
		return Session{}, err
	}
	switch {
	case code != "" && (out.OpenID == "" || out.SessionKey == ""):
		return Session{}, &ResponseError{Platform: Platform, Path: PathCode2Session, StatusCode: http.StatusOK, Problem: "success without openid or session_key"}
	case anonymousCode != "" && out.AnonymousOpenID == "":
		return Session{}, &ResponseError{Platform: Platform, Path: PathCode2Session, StatusCode: http.StatusOK, Problem: "success without anonymous_openid"}
	}
	s := Session{AnonymousOpenID: out.AnonymousOpenID}
	if code != "" {
		s.OpenID, s.UnionID, s.SessionKey = out.OpenID, out.UnionID, provider.Secret(out.SessionKey)
	}
	return s, nil
}

// fetchAccessToken calls POST /api/apps/v2/token.
func (c *HTTPClient) fetchAccessToken(ctx context.Context, a *app) (string, time.Duration, error) {
	var out struct {
		AccessToken string      `json:"access_token"`
		ExpiresIn   json.Number `json:"expires_in"`
	}
	body := map[string]string{"appid": a.Config.AppID, "secret": a.Config.Secret, "grant_type": "client_credential"}
	if err := c.call(ctx, a, PathToken, body, &out); err != nil {
		return "", 0, err
	}
	secs, err := out.ExpiresIn.Int64()
	if out.AccessToken == "" || err != nil || secs <= 0 {
		return "", 0, &ResponseError{Platform: Platform, Path: PathToken, StatusCode: http.StatusOK, Problem: "success without access_token or expires_in"}
	}
	return out.AccessToken, time.Duration(secs) * time.Second, nil
}

// call POSTs body as JSON within the client timeout, checks err_no and
// decodes data into out. It logs one line; the AppSecret is scrubbed from
// anything kept or logged.
func (c *HTTPClient) call(ctx context.Context, a *app, path string, body map[string]string, out any) error {
	secrets := []string{a.Config.Secret}
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("douyin: encode request: %w", err)
	}
	start := time.Now()
	resp, err := platformhttp.Do(ctx, c.HTTP, c.Timeout, platformhttp.Request{
		Method: http.MethodPost, URL: a.Base + path, Body: payload, ContentType: "application/json",
	}, MaxResponseBytes)
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
	var de *Error
	switch {
	case errors.As(err, &de):
		fields = append(fields, zap.Int("err_no", de.Code), zap.String("log_id", de.LogID), zap.Stringer("kind", de.Kind()))
		switch de.Kind() {
		case provider.KindMisconfigured:
			c.Log.Error("douyin call: Douyin refused our credentials; check this app's appid and secret in APP_APPS", fields...)
		case provider.KindUnavailable, provider.KindUnknown:
			c.Log.Warn("douyin call", fields...)
		default:
			c.Log.Info("douyin call", fields...)
		}
	case err != nil:
		c.Log.Warn("douyin call", append(fields, zap.Error(err))...)
	default:
		c.Log.Info("douyin call", append(fields, zap.Int("err_no", 0))...)
	}
	return err
}

// envelope is every v2 answer: err_no, err_tips, log_id and data.
type envelope struct {
	ErrNo   *json.Number    `json:"err_no"`
	ErrTips string          `json:"err_tips"`
	LogID   string          `json:"log_id"`
	Data    json.RawMessage `json:"data"`
}

// decode reads a Douyin answer whatever its Content-Type: err_no first
// (required: success is err_no 0), then the HTTP status, then data.
func decode(path string, resp platformhttp.Response, out any, secrets []string) error {
	body := bytes.TrimPrefix(bytes.TrimSpace(resp.Body), []byte("\xef\xbb\xbf"))
	bad := func(problem string) error {
		return &ResponseError{Platform: Platform, Path: path, StatusCode: resp.Status, ContentType: resp.ContentType,
			Problem: platformhttp.Scrub(problem, secrets)}
	}
	if len(body) == 0 {
		return bad("empty body")
	}
	if body[0] != '{' {
		return bad("not a JSON object")
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return bad("unreadable JSON: " + err.Error())
	}
	if env.ErrNo == nil {
		if resp.Status < 200 || resp.Status > 299 {
			return bad("HTTP status without err_no")
		}
		return bad("no err_no")
	}
	code, err := env.ErrNo.Int64()
	if err != nil {
		return bad("err_no is not an integer")
	}
	if code != 0 {
		return &Error{Path: path, Code: int(code), Message: platformhttp.Scrub(env.ErrTips, secrets), LogID: env.LogID}
	}
	if resp.Status < 200 || resp.Status > 299 {
		return bad("HTTP error status with err_no 0")
	}
	if len(env.Data) == 0 || bytes.Equal(env.Data, []byte("null")) || env.Data[0] != '{' {
		return bad("success without a data object")
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return bad("unexpected data: " + err.Error())
	}
	return nil
}
