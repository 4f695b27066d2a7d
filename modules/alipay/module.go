package alipay

import (
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Module provides the Alipay Client for the Alipay apps of config.Apps and
// joins its *Provider to the "providers" group. It traces its calls when the
// graph holds a trace.TracerProvider (modules/tracing).
var Module = fx.Module("alipay",
	fx.Provide(New, provider.AsProvider(NewProvider)),
)

// Params are New's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle `optional:"true"`
	Apps      config.Apps
	Logger    *zap.Logger `optional:"true"`
	// Tracer traces calls (modules/tracing).
	Tracer trace.TracerProvider `optional:"true"`
}

// New builds the HTTP client for fx; its idle connections are closed when
// the application stops.
func New(p Params) (Client, error) {
	c, err := NewClient(p.Apps, WithLogger(p.Logger), WithTracerProvider(p.Tracer))
	if err != nil {
		return nil, err
	}
	if p.Lifecycle != nil {
		p.Lifecycle.Append(fx.StopHook(c.CloseIdleConnections))
	}
	return c, nil
}
