// Package redis connects to the optional Redis that shares state between
// instances: the WeChat access token, the JWT deny list, the redis token
// strategy and the revocation feed of the verification caches.
//
// Module provides *redis.Client (go-redis v9). The application adds it only
// when APP_REDIS_ADDR is set; consumers take the client as optional. A team
// that already has a client supplies it with fx.Supply(client) instead of
// Module (the readiness check then is theirs to add).
package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/health"
)

// Module provides the client, checks it at start, adds the "redis"
// readiness check of GET /readyz and closes the client on stop.
var Module = fx.Module("redis",
	fx.Provide(
		New,
		health.AsCheck(func(c *goredis.Client) health.Check {
			return health.Check{Name: "redis", Run: func(ctx context.Context) error { return Ping(ctx, c) }}
		}),
	),
)

// New connects to the configured Redis. Start fails when it does not answer.
func New(lc fx.Lifecycle, cfg config.Redis) (*goredis.Client, error) {
	if !cfg.Enabled() {
		return nil, fmt.Errorf("redis: APP_REDIS_ADDR is not set")
	}
	client := Open(cfg)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := Ping(ctx, client); err != nil {
				return fmt.Errorf("redis: %s is not reachable: %w", cfg.Addr, err)
			}
			return nil
		},
		OnStop: func(context.Context) error { return client.Close() },
	})
	return client, nil
}

// Open makes a client without contacting Redis.
func Open(cfg config.Redis) *goredis.Client {
	return goredis.NewClient(&goredis.Options{
		Addr:         cfg.Addr,
		Password:     cfg.Password,
		DB:           cfg.DB,
		DialTimeout:  3 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
	})
}

// Ping checks that Redis answers within a short deadline.
func Ping(ctx context.Context, client *goredis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return client.Ping(ctx).Err()
}
