package token

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/modules/database"
)

// Module provides the configured [Strategy] (behind [Cached] unless
// config.Token.CacheSize is 0), the revocation [Feed], the JWT *[KeySet] (for
// the JWKS route) and the *[Cleaner], whose job it starts and stops with the
// application. It needs *ent.Client, config.Token, config.Redis and
// *zap.Logger, and takes a redis.UniversalClient (a single Redis or a
// Redis Cluster) and an [Observer] (metrics) when they are provided.
var Module = fx.Module("token",
	fx.Provide(
		NewKeySet,
		ProvideFeed,
		ProvideStrategy,
		ProvideCleaner,
	),
	fx.Invoke(func(*Cleaner) {}),
)

// FeedParams are ProvideFeed's dependencies.
type FeedParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Token
	Redis     config.Redis
	Client    *ent.Client
	// RedisClient is provided only when Redis is configured.
	RedisClient redis.UniversalClient `optional:"true"`
	Logger      *zap.Logger
	// Observer hears the feed's state and lag (modules/metrics).
	Observer Observer `optional:"true"`
}

// ProvideFeed returns a [RedisFeed] when a Redis client is provided, else a
// [PollFeed]; the application's lifecycle starts and stops it.
func ProvideFeed(p FeedParams) Feed {
	type startStopper interface {
		Feed
		Start(context.Context) error
		Stop(context.Context) error
		SetObserver(Observer)
	}
	var f startStopper
	if p.RedisClient != nil {
		f = NewRedisFeed(p.RedisClient, p.Redis.Prefix, p.Logger)
	} else {
		f = NewPollFeed(p.Client, p.Config.RevocationPoll, p.Logger)
	}
	if p.Observer != nil {
		f.SetObserver(p.Observer)
	}
	p.Lifecycle.Append(fx.Hook{OnStart: f.Start, OnStop: f.Stop})
	return f
}

// StrategyParams are ProvideStrategy's dependencies.
type StrategyParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Token
	Redis     config.Redis
	Client    *ent.Client
	// RedisClient is provided only when Redis is configured.
	RedisClient redis.UniversalClient `optional:"true"`
	Logger      *zap.Logger
	Keys        *KeySet
	Feed        Feed
	// Batch is provided on MySQL: sessions are issued in one round trip.
	Batch *database.Batch `optional:"true"`
	// Observer hears every check (modules/metrics).
	Observer Observer `optional:"true"`
}

// ProvideStrategy builds the strategy config.Token.Strategy names, behind
// the cache when config.Token.CacheSize is positive. The jwt strategy keeps
// its deny list in Redis when a Redis client is provided, else in the
// database.
func ProvideStrategy(p StrategyParams) (Strategy, error) {
	o := Options{Config: p.Config, Feed: p.Feed, Logger: p.Logger, Batch: p.Batch}
	var s Strategy
	var err error
	switch p.Config.Strategy {
	case NameJWT:
		var deny DenyList = NewDBDenyList(p.Client)
		if p.RedisClient != nil {
			deny = NewRedisDenyList(p.RedisClient, p.Redis.Prefix)
		}
		var j *JWT
		j, err = NewJWT(p.Client, p.Keys, deny, o)
		if err == nil {
			p.Lifecycle.Append(fx.StopHook(j.Close))
			s = j
		}
	case NameDB:
		s, err = NewDB(p.Client, o)
	case NameRedis:
		if p.RedisClient == nil {
			return nil, errConfig("APP_TOKEN_STRATEGY=redis needs Redis: set APP_REDIS_ADDR and include the redis module")
		}
		s, err = NewRedis(p.RedisClient, p.Redis.Prefix, o)
	default:
		return nil, errConfig(fmt.Sprintf("APP_TOKEN_STRATEGY must be jwt, db or redis, not %q", p.Config.Strategy))
	}
	if err != nil {
		return nil, err
	}
	if p.Config.CacheSize > 0 {
		c, err := NewCached(s, p.Feed, CacheOptions{Size: p.Config.CacheSize, Observer: p.Observer})
		if err != nil {
			return nil, err
		}
		p.Lifecycle.Append(fx.StopHook(c.Close))
		s = c
	} else if p.Observer != nil {
		s = observed{Strategy: s, obs: p.Observer}
	}
	fields := []zap.Field{zap.String("strategy", s.Name()), zap.Int("cache_size", p.Config.CacheSize),
		zap.Bool("redis", p.RedisClient != nil)}
	if p.Config.Strategy == NameJWT {
		fields = append(fields, zap.String("jwt_alg", p.Keys.Algorithm()), zap.String("jwt_kid", p.Keys.SigningKeyID()))
	}
	p.Logger.Info("token strategy ready", fields...)
	return s, nil
}

// CleanerParams are ProvideCleaner's dependencies.
type CleanerParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Token
	Client    *ent.Client
	Logger    *zap.Logger
}

// ProvideCleaner returns the cleanup job, started and stopped with the
// application.
func ProvideCleaner(p CleanerParams) *Cleaner {
	c := NewCleaner(p.Client, p.Config.CleanupInterval, p.Logger, nil)
	p.Lifecycle.Append(fx.Hook{OnStart: c.Start, OnStop: c.Stop})
	return c
}
