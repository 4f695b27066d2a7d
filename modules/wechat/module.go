package wechat

import (
	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Module provides *Clients (one client per WeChat app of config.Apps), the
// WeChat *Provider (in the "providers" group) and TokenStore.
var Module = fx.Module("wechat",
	fx.Provide(
		NewTokenStore,
		New,
		NewProviderFx,
		provider.AsProvider(func(p *Provider) *Provider { return p }),
	),
)

// StoreParams are NewTokenStore's dependencies; both are optional.
type StoreParams struct {
	fx.In
	Redis  *redis.Client `optional:"true"`
	Config config.Redis  `optional:"true"`
}

// NewTokenStore is a RedisStore (keys prefixed by config.Redis.Prefix) when
// the graph holds a *redis.Client, else a MemoryStore.
func NewTokenStore(p StoreParams) TokenStore {
	if p.Redis != nil {
		return NewRedisStore(p.Redis, p.Config.Prefix)
	}
	return NewMemoryStore()
}

// Params are New's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle `optional:"true"`
	Config    config.WeChat
	Apps      config.Apps
	Store     TokenStore
	Logger    *zap.Logger `optional:"true"`
}

// New builds the clients of every WeChat app; their idle connections are
// closed when the application stops.
func New(p Params) (*Clients, error) {
	cs, err := NewClients(p.Config, p.Apps, WithLogger(p.Logger), WithTokenStore(p.Store))
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
