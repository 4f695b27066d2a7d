package qq

import (
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Module provides the QQ Client for the QQ apps of config.Apps and joins
// its *Provider to the "providers" group. It shares access tokens through
// the platformtoken.Store of platformtoken.Module; it takes a
// platformtoken.Observer (metrics) and a trace.TracerProvider (tracing) when
// the graph holds them.
var Module = fx.Module("qq",
	fx.Provide(New, provider.AsProvider(NewProvider)),
)

// Params are New's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle `optional:"true"`
	Apps      config.Apps
	Store     platformtoken.Store
	Logger    *zap.Logger `optional:"true"`
	// TokenObserver hears every access-token fetch (modules/metrics);
	// Tracer traces calls (modules/tracing).
	TokenObserver platformtoken.Observer `optional:"true"`
	Tracer        trace.TracerProvider   `optional:"true"`
}

// New builds the HTTP client for fx; its idle connections are closed when
// the application stops.
func New(p Params) (Client, error) {
	c, err := NewClient(p.Apps, WithLogger(p.Logger), WithTokenStore(p.Store),
		WithTokenObserver(p.TokenObserver), WithTracerProvider(p.Tracer))
	if err != nil {
		return nil, err
	}
	if p.Lifecycle != nil {
		p.Lifecycle.Append(fx.StopHook(c.CloseIdleConnections))
	}
	return c, nil
}
