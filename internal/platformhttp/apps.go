package platformhttp

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Options are the settings of a platform client whose APIs need a server
// access token (qq, douyin): each package's With… options fill them.
type Options struct {
	Logger     *zap.Logger
	HTTPClient *http.Client
	Timeout    time.Duration // each call; default DefaultTimeout
	TokenStore platformtoken.Store
	Now        func() time.Time
	LockTTL    time.Duration // default twice the timeout, at least a second
	Tracer     trace.TracerProvider
	TokenObs   platformtoken.Observer
}

// App is one app of the platform: its configuration, its API root and its
// fleet-wide access-token manager.
type App struct {
	Config config.App
	Base   string
	Tokens *platformtoken.Manager
}

// FetchToken asks the platform for a new access token of a and says how
// long it lives.
type FetchToken func(ctx context.Context, a *App) (string, time.Duration, error)

// Apps is what such a client shares with the others: the platform's apps of
// the deployment, the HTTP client every call goes through (TLS verified, no
// redirects, traced without the query) and its logger.
type Apps struct {
	Timeout time.Duration
	HTTP    *http.Client
	Log     *zap.Logger

	platform, name string
	apps           map[string]*App
}

// NewApps builds the apps of platform (its name as people write it, e.g.
// "QQ", for messages) among apps: each needs an appid and a secret and may
// set a base URL (default defaultBase). fetch gets each app's access token
// when its manager needs a new one.
func NewApps(platform, name, defaultBase string, apps config.Apps, o Options, fetch FetchToken) (*Apps, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.TokenStore == nil {
		o.TokenStore = platformtoken.NewMemoryStore()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LockTTL <= 0 {
		o.LockTTL = max(2*o.Timeout, time.Second)
	}
	hc, err := NewHTTPClient(o.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", platform, err)
	}
	c := &Apps{
		Timeout: o.Timeout, HTTP: TracedClient(hc, o.Tracer, platform), Log: o.Logger.Named(platform),
		platform: platform, name: name, apps: map[string]*App{},
	}
	for _, a := range apps.Of(platform) {
		if a.AppID == "" || a.Secret == "" {
			return nil, fmt.Errorf("%s: app %q: appid and secret are required", platform, a.AppID)
		}
		base, err := BaseURL(a.BaseURL, defaultBase)
		if err != nil {
			return nil, fmt.Errorf("%s: app %s: %w", platform, a.AppID, err)
		}
		st := &App{Config: a, Base: base}
		st.Tokens = platformtoken.New(a.AppID, o.TokenStore,
			func(ctx context.Context) (string, time.Duration, error) { return fetch(ctx, st) },
			platformtoken.WithLogger(c.Log), platformtoken.WithClock(o.Now), platformtoken.WithLockTTL(o.LockTTL),
			platformtoken.WithObserver(o.TokenObs),
			platformtoken.WithUnavailable(func(err error) error {
				return &TransportError{Platform: platform, Path: "access token", Err: err}
			}))
		c.apps[a.AppID] = st
	}
	return c, nil
}

// App is app appid, or a KindMisconfigured *provider.Error when the
// deployment has no such app of this platform.
func (c *Apps) App(appid string) (*App, error) {
	a, ok := c.apps[appid]
	if !ok {
		return nil, &provider.Error{Platform: c.platform, Kind: provider.KindMisconfigured,
			Message: fmt.Sprintf("app %q is not a configured %s app", appid, c.name)}
	}
	return a, nil
}

// Tokens is app appid's access-token manager; nil for an unknown app.
func (c *Apps) Tokens(appid string) *platformtoken.Manager {
	if a, ok := c.apps[appid]; ok {
		return a.Tokens
	}
	return nil
}

// AccessToken returns app appid's current access token: one fetch per
// expiry window for the whole fleet (see platformtoken).
func (c *Apps) AccessToken(ctx context.Context, appid string) (string, error) {
	a, err := c.App(appid)
	if err != nil {
		return "", err
	}
	return a.Tokens.AccessToken(ctx)
}

// CloseIdleConnections closes the keep-alive connections the client holds.
func (c *Apps) CloseIdleConnections() { c.HTTP.CloseIdleConnections() }
