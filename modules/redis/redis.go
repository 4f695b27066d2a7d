// Package redis connects to the optional Redis that shares state between
// instances: the WeChat access token, the JWT deny list, the redis token
// strategy and the revocation feed of the verification caches.
//
// Module provides a go-redis v9 UniversalClient: a *redis.Client for one
// address in APP_REDIS_ADDR, a *redis.ClusterClient for several
// (comma-separated nodes of a Redis Cluster). The application adds it only
// when APP_REDIS_ADDR is set; consumers take the UniversalClient as
// optional. A team that already has a client supplies it in its place:
//
//	fx.Supply(fx.Annotate(client, fx.As(new(redis.UniversalClient))))
//
// (the readiness check then is theirs to add). Every wxlogin consumer keys
// the keys one Lua script or transaction touches by one hash tag, so all of
// them work on a Redis Cluster. The rate limits (modules/ratelimit) take this
// client too; each of their scripts touches one key.
package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/health"
)

// Module provides the client, checks it at start, adds the "redis"
// readiness check of GET /readyz and closes the client on stop.
var Module = fx.Module("redis",
	fx.Provide(
		New,
		health.AsCheck(func(c goredis.UniversalClient) health.Check {
			return health.Check{Name: "redis", Run: func(ctx context.Context) error { return Ping(ctx, c) }}
		}),
	),
)

// Params are New's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Redis
	// Tracer makes every command a span (modules/tracing); optional.
	Tracer trace.TracerProvider `optional:"true"`
}

// New connects to the configured Redis or Redis Cluster. Start fails when
// it does not answer. With a recording Tracer, every command is a span
// (redisotel) naming the command, never its arguments (keys and values
// hold token hashes and access tokens).
func New(p Params) (goredis.UniversalClient, error) {
	lc, cfg := p.Lifecycle, p.Config
	if !cfg.Enabled() {
		return nil, fmt.Errorf("redis: APP_REDIS_ADDR is not set")
	}
	client := Open(cfg)
	if _, off := p.Tracer.(noop.TracerProvider); p.Tracer != nil && !off {
		if err := redisotel.InstrumentTracing(client, redisotel.WithTracerProvider(p.Tracer), redisotel.WithDBStatement(false),
			redisotel.WithCallerEnabled(false)); err != nil {
			return nil, fmt.Errorf("redis: tracing: %w", err)
		}
	}
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

// Open makes a client without contacting Redis: a cluster client when cfg
// names several addresses.
func Open(cfg config.Redis) goredis.UniversalClient {
	return goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:         cfg.Addrs(),
		IsClusterMode: cfg.Cluster(),
		Password:      cfg.Password,
		DB:            cfg.DB,
		DialTimeout:   3 * time.Second,
		ReadTimeout:   2 * time.Second,
		WriteTimeout:  2 * time.Second,
	})
}

// Ping checks that Redis answers within a short deadline; on a cluster,
// that every master does.
func Ping(ctx context.Context, client goredis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, ok := client.(*goredis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return n.Ping(ctx).Err() })
	}
	return client.Ping(ctx).Err()
}
