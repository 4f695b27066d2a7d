package wechat

import (
	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
)

// Module provides Client, *TokenManager and TokenStore.
var Module = fx.Module("wechat",
	fx.Provide(NewTokenStore, New),
)

// StoreParams are NewTokenStore's dependencies; both are optional.
type StoreParams struct {
	fx.In
	Redis  redis.UniversalClient `optional:"true"`
	Config config.Redis          `optional:"true"`
}

// NewTokenStore is a RedisStore (keys prefixed by config.Redis.Prefix) when
// the graph holds a redis.UniversalClient (single Redis or Cluster), else a
// MemoryStore.
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
	Store     TokenStore
	Logger    *zap.Logger `optional:"true"`
}

// Result is what New provides.
type Result struct {
	fx.Out
	Client Client
	Tokens *TokenManager
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
