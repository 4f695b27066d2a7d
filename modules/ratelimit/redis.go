package ratelimit

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// gcra is the generic cell rate algorithm on one key — a token bucket of
// burst ARGV[2] refilled one event every ARGV[1] microseconds, kept as the
// bucket's "theoretical arrival time" (TAT) — on Redis' own clock, so the
// instances of a fleet agree. ARGV[3] is 1 to take an event, 0 to look.
// It touches one key, so it runs on a Redis Cluster as is. It returns
// {allowed, remaining after this event, µs until one more is allowed}.
//
// (go-redis/redis_rate does the same, but writes its keys under a fixed
// "rate:" prefix outside APP_REDIS_PREFIX and cannot look without taking.)
var gcra = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local take = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local wait = tat + interval - burst * interval - now
if wait > 0 then
  return {0, 0, wait}
end
local remaining = math.floor((now + burst * interval - tat) / interval) - 1
if take == 1 then
  tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return {1, remaining, 0}
`)

// Redis is a Limiter shared by every instance through Redis (or a Redis
// Cluster): one key per counted key, prefix + key. When Redis does not
// answer, it counts in memory instead ([Memory], per instance) and logs it:
// a limit is protection, and Redis being down must neither refuse every
// request nor lift every limit.
type Redis struct {
	client   redis.UniversalClient
	prefix   string
	rate     Rate
	fallback *Memory
	log      *zap.Logger
	warned   atomic.Int64 // unix seconds of the last warning
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Limiter of r per key in client, under keys starting
// with prefix (e.g. "wxlogin:rl:login_failures:"). fallback counts while
// Redis does not answer (nil: a Memory of 10 000 keys); logger may be nil.
func NewRedis(client redis.UniversalClient, prefix string, r Rate, fallback *Memory, logger *zap.Logger) *Redis {
	if fallback == nil {
		fallback = NewMemory(r, 10000)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Redis{client: client, prefix: prefix, rate: r, fallback: fallback, log: logger.Named("ratelimit")}
}

// Rate is the limiter's rate.
func (l *Redis) Rate() Rate { return l.rate }

// Allow takes one event from key's bucket if it has one.
func (l *Redis) Allow(ctx context.Context, key string) (Result, error) {
	return l.run(ctx, key, true)
}

// Peek tells whether key's bucket has an event left, taking nothing.
func (l *Redis) Peek(ctx context.Context, key string) (Result, error) {
	return l.run(ctx, key, false)
}

// redisTimeout bounds one call: a limit must not hold a request up long.
const redisTimeout = 500 * time.Millisecond

func (l *Redis) run(ctx context.Context, key string, take bool) (Result, error) {
	if l.rate.Off() {
		return Result{Allowed: true, Remaining: -1}, nil
	}
	flag := 0
	if take {
		flag = 1
	}
	cctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	v, err := gcra.Run(cctx, l.client, []string{l.prefix + key},
		l.rate.Interval().Microseconds(), l.rate.N, flag).Int64Slice()
	if err == nil && len(v) == 3 {
		return Result{Allowed: v[0] == 1, Remaining: int(v[1]), RetryAfter: time.Duration(v[2]) * time.Microsecond}, nil
	}
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	if err == nil {
		err = errors.New("unexpected script answer")
	}
	if now := time.Now().Unix(); l.warned.Load() < now-60 {
		l.warned.Store(now)
		l.log.Warn("Redis does not answer: rate limits count in this instance's memory meanwhile", zap.Error(err))
	}
	if take {
		return l.fallback.Allow(ctx, key)
	}
	return l.fallback.Peek(ctx, key)
}
