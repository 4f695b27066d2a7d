// Package ratelimit limits how often a key (a client address, a session, a
// user, an app) may do something, and answers 429 rate_limited with
// Retry-After when it did too much.
//
// A [Limiter] counts events per key against a [Rate] (a token bucket: a
// burst of N, refilled evenly over the period). Two backends: [Memory],
// one process (a sharded LRU of buckets, bounded memory), and [Redis],
// shared by the fleet through Redis or a Redis Cluster (one key per counted
// key, one Lua script per call), which counts in memory while Redis does
// not answer.
//
// [New] is the Fiber middleware (Fiber's usual shape: a Config with a Next
// hook and a Key function); with FailuresOnly it counts only requests that
// failed and refuses a key once its failures used the limit up — how
// failed logins are limited per address without limiting the many users
// behind one carrier address. [Take], [Check] and [Record] do the same
// inside a handler, for keys found in the body.
//
// # fx
//
// [Module] provides *[Limits]: the limits the built-in routes use, from
// config.RateLimit (APP_RATELIMIT_*), in Redis when the graph holds a
// redis.UniversalClient (modules/redis), else in memory; and a
// provider.Budget that makes every platform call of an app spend from the
// app's budget (APP_RATELIMIT_PLATFORM_CALLS). A limit that is "off" is a
// nil Limiter, which every helper here treats as no limit. An application
// limits its own routes with the same pieces:
//
//	app.Post("/api/v1/orders", guard.Handler(), ratelimit.New(ratelimit.Config{
//		Limiter: ratelimit.NewRedis(client, "myapp:rl:orders:", config.Rate{N: 10, Per: time.Minute}, nil, logger),
//		Key:     func(c *fiber.Ctx) string { p, _ := auth.PrincipalOf(c); return strconv.Itoa(p.UserID) },
//	}), createOrder)
//
// and replaces a built-in limit with fx.Decorate(func(l *ratelimit.Limits)
// *ratelimit.Limits { … }).
package ratelimit

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Rate is N events per period (config.Rate).
type Rate = config.Rate

// Result is what a Limiter says about one event.
type Result struct {
	// Allowed is whether the event may happen (Peek: would).
	Allowed bool
	// Remaining is how many more events the key may have right after this
	// one (-1: no limit).
	Remaining int
	// RetryAfter is, when not allowed, how long until one more is.
	RetryAfter time.Duration
}

// Limiter counts events per key.
type Limiter interface {
	// Allow takes one event from key's allowance if there is one left.
	Allow(ctx context.Context, key string) (Result, error)
	// Peek tells whether key has an event left, without taking it.
	Peek(ctx context.Context, key string) (Result, error)
}

// Limits are the limits of the built-in routes; a nil Limiter is no limit.
type Limits struct {
	// LoginFailures counts failed logins per client address (POST
	// /api/v1/auth/login).
	LoginFailures Limiter
	// Refresh counts refreshes per session (POST /api/v1/auth/refresh).
	Refresh Limiter
	// AvatarUploads counts uploads per user (POST /api/v1/me/avatar).
	AvatarUploads Limiter
	// OpenData counts phone-number and user-info calls per user (POST
	// /api/v1/me/phone, /api/v1/me/userinfo).
	OpenData Limiter
	// PlatformCalls is the budget of platform API calls per appid.
	PlatformCalls Limiter
}

// Module provides *Limits and the provider.Budget of platform calls.
var Module = fx.Module("ratelimit",
	fx.Provide(
		NewLimitsFx,
		func(l *Limits) provider.Budget { return Budget{Limiter: l.PlatformCalls} },
	),
)

// Params are NewLimitsFx's dependencies.
type Params struct {
	fx.In
	Config config.RateLimit
	Redis  config.Redis `optional:"true"`
	// Client shares the limits across the fleet; without it they are per
	// instance.
	Client redis.UniversalClient `optional:"true"`
	Logger *zap.Logger           `optional:"true"`
}

// NewLimitsFx is NewLimits for fx.
func NewLimitsFx(p Params) *Limits {
	return NewLimits(p.Config, p.Client, p.Redis.Prefix, p.Logger)
}

// NewLimits builds the limits of cfg: in client under keys starting with
// prefix+"rl:" when client is not nil, else in memory.
func NewLimits(cfg config.RateLimit, client redis.UniversalClient, prefix string, logger *zap.Logger) *Limits {
	keys := cfg.MemoryKeys
	if keys <= 0 {
		keys = 50000
	}
	make := func(name string, r Rate) Limiter {
		if r.Off() {
			return nil
		}
		mem := NewMemory(r, keys)
		if client == nil {
			return mem
		}
		return NewRedis(client, prefix+"rl:"+name+":", r, mem, logger)
	}
	return &Limits{
		LoginFailures: make("login_failures", cfg.LoginFailures),
		Refresh:       make("refresh", cfg.Refresh),
		AvatarUploads: make("avatar_uploads", cfg.AvatarUploads),
		OpenData:      make("open_data", cfg.OpenData),
		PlatformCalls: make("platform_calls", cfg.PlatformCalls),
	}
}
