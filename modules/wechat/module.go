package wechat

import (
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Module provides *Clients (one client per WeChat app of config.Apps) and
// the WeChat *Provider (in the "providers" group). The clients share access
// tokens, per appid, through the platformtoken.Store of platformtoken.Module.
var Module = fx.Module("wechat",
	fx.Provide(
		New,
		NewProviderFx,
		provider.AsProvider(func(p *Provider) *Provider { return p }),
	),
)

// Params are New's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle `optional:"true"`
	Config    config.WeChat
	Apps      config.Apps
	Store     platformtoken.Store
	Logger    *zap.Logger `optional:"true"`
	// Observer hears every call, TokenObserver every access-token fetch
	// (modules/metrics); Tracer traces calls (modules/tracing).
	Observer      Observer               `optional:"true"`
	TokenObserver platformtoken.Observer `optional:"true"`
	Tracer        trace.TracerProvider   `optional:"true"`
}

// New builds the clients of every WeChat app; their idle connections are
// closed when the application stops.
func New(p Params) (*Clients, error) {
	cs, err := NewClients(p.Config, p.Apps, WithLogger(p.Logger), WithTokenStore(p.Store),
		WithObserver(p.Observer), WithTokenObserver(p.TokenObserver), WithTracerProvider(p.Tracer))
	if err != nil {
		return nil, err
	}
	if p.Lifecycle != nil {
		p.Lifecycle.Append(fx.StopHook(cs.closeIdle))
	}
	return cs, nil
}

// ProviderParams are NewProviderFx's dependencies.
type ProviderParams struct {
	fx.In
	Clients *Clients
	Logger  *zap.Logger `optional:"true"`
}

// NewProviderFx is NewProvider for fx.
func NewProviderFx(p ProviderParams) *Provider { return NewProvider(p.Clients, p.Logger) }
