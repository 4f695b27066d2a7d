package wechat

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
)

// Module provides Client and its *platformtoken.Manager. It shares access
// tokens through the platformtoken.Store of platformtoken.Module.
var Module = fx.Module("wechat",
	fx.Provide(New),
)

// Params are New's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle `optional:"true"`
	Config    config.WeChat
	Store     platformtoken.Store
	Logger    *zap.Logger `optional:"true"`
}

// Result is what New provides.
type Result struct {
	fx.Out
	Client Client
	Tokens *platformtoken.Manager
}

// New builds the HTTP client and its token manager for fx; the client's
// idle connections are closed when the application stops.
func New(p Params) (Result, error) {
	c, err := NewClient(p.Config, WithLogger(p.Logger), WithTokenStore(p.Store))
	if err != nil {
		return Result{}, err
	}
	if p.Lifecycle != nil {
		p.Lifecycle.Append(fx.StopHook(c.CloseIdleConnections))
	}
	return Result{Client: c, Tokens: c.Tokens()}, nil
}
