package platformtoken

import (
	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
)

// Module provides the Store every platform module shares its access tokens
// through.
var Module = fx.Module("platformtoken",
	fx.Provide(NewStore),
)

// StoreParams are NewStore's dependencies; all are optional.
type StoreParams struct {
	fx.In
	// Universal is any go-redis client an application supplies as a
	// redis.UniversalClient (a cluster client, say).
	Universal redis.UniversalClient `optional:"true"`
	// Redis is the client modules/redis provides.
	Redis  *redis.Client `optional:"true"`
	Config config.Redis  `optional:"true"`
}

// NewStore is a RedisStore (keys prefixed by config.Redis.Prefix) when the
// graph holds a redis.UniversalClient or a *redis.Client (in that order),
// else a MemoryStore.
func NewStore(p StoreParams) Store {
	switch {
	case p.Universal != nil:
		return NewRedisStore(p.Universal, p.Config.Prefix)
	case p.Redis != nil:
		return NewRedisStore(p.Redis, p.Config.Prefix)
	}
	return NewMemoryStore()
}
