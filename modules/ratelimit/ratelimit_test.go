package ratelimit_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/ratelimit"
)

// backends builds a limiter of a rate on each backend.
var backends = []struct {
	name string
	make func(t *testing.T, r ratelimit.Rate) ratelimit.Limiter
}{
	{"memory", func(t *testing.T, r ratelimit.Rate) ratelimit.Limiter { return ratelimit.NewMemory(r, 1000) }},
	{"redis", func(t *testing.T, r ratelimit.Rate) ratelimit.Limiter {
		c, prefix := testutil.Redis(t)
		return ratelimit.NewRedis(c, prefix+"rl:", r, nil, zap.NewNop())
	}},
	{"cluster", func(t *testing.T, r ratelimit.Rate) ratelimit.Limiter {
		c, prefix := testutil.RedisCluster(t)
		return ratelimit.NewRedis(c, prefix+"rl:", r, nil, zap.NewNop())
	}},
}

// TestLimiterContract runs one contract against every backend: a burst of
// N, then a refusal that says when to retry, keys apart, Peek takes
// nothing, concurrent callers never get more than N, and the bucket refills.
func TestLimiterContract(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("burst then refusal", func(t *testing.T) {
				l := b.make(t, ratelimit.Rate{N: 5, Per: time.Hour})
				for i := range 5 {
					r, err := l.Allow(ctx, "a")
					require.NoError(t, err)
					require.True(t, r.Allowed, "event %d", i)
					require.Equal(t, 4-i, r.Remaining)
				}
				r, err := l.Allow(ctx, "a")
				require.NoError(t, err)
				require.False(t, r.Allowed)
				require.Positive(t, r.RetryAfter)
				require.LessOrEqual(t, r.RetryAfter, 12*time.Minute+time.Second, "one event's room comes back after Per/N")
				r, err = l.Allow(ctx, "b")
				require.NoError(t, err)
				require.True(t, r.Allowed, "another key has its own bucket")
			})
			t.Run("peek takes nothing", func(t *testing.T) {
				l := b.make(t, ratelimit.Rate{N: 2, Per: time.Hour})
				for range 10 {
					r, err := l.Peek(ctx, "k")
					require.NoError(t, err)
					require.True(t, r.Allowed)
				}
				_, _ = l.Allow(ctx, "k")
				_, _ = l.Allow(ctx, "k")
				r, err := l.Peek(ctx, "k")
				require.NoError(t, err)
				require.False(t, r.Allowed)
				require.Positive(t, r.RetryAfter)
			})
			t.Run("concurrent callers get exactly N", func(t *testing.T) {
				l := b.make(t, ratelimit.Rate{N: 10, Per: time.Hour})
				var allowed atomic.Int32
				var wg sync.WaitGroup
				for range 60 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if r, err := l.Allow(ctx, "shared"); err == nil && r.Allowed {
							allowed.Add(1)
						}
					}()
				}
				wg.Wait()
				require.Equal(t, int32(10), allowed.Load())
			})
			t.Run("refills", func(t *testing.T) {
				l := b.make(t, ratelimit.Rate{N: 2, Per: 200 * time.Millisecond})
				_, _ = l.Allow(ctx, "r")
				_, _ = l.Allow(ctx, "r")
				r, _ := l.Allow(ctx, "r")
				require.False(t, r.Allowed)
				testutil.Eventually(t, 5*time.Second, func() bool {
					r, err := l.Allow(ctx, "r")
					return err == nil && r.Allowed
				}, "the bucket refills")
			})
		})
	}
}

// TestRedisKeysAndFallback: keys live under the prefix and expire; with
// Redis cut, the limiter counts in memory instead of failing or letting
// everything through.
func TestRedisKeysAndFallback(t *testing.T) {
	ctx := context.Background()
	cfg := testutil.RedisConfig(t)
	direct := redis.NewClient(&redis.Options{Addr: cfg.Addr})
	defer direct.Close()
	proxy := testutil.NewProxy(t, cfg.Addr)
	client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 300 * time.Millisecond})
	defer client.Close()
	l := ratelimit.NewRedis(client, cfg.Prefix+"rl:x:", ratelimit.Rate{N: 3, Per: time.Minute}, nil, zap.NewNop())

	r, err := l.Allow(ctx, "1.2.3.4")
	require.NoError(t, err)
	require.True(t, r.Allowed)
	ttl, err := direct.PTTL(ctx, cfg.Prefix+"rl:x:1.2.3.4").Result()
	require.NoError(t, err)
	require.Positive(t, ttl, "the key expires once its bucket is full again")
	require.LessOrEqual(t, ttl, 21*time.Second)

	proxy.Stop()
	allowed := 0
	for range 10 {
		r, err := l.Allow(ctx, "5.6.7.8")
		require.NoError(t, err, "an outage is not an error of the limit")
		if r.Allowed {
			allowed++
		}
	}
	require.Equal(t, 3, allowed, "while Redis is down, the limit holds in memory")
	proxy.Start(t)
	testutil.Eventually(t, 10*time.Second, func() bool {
		r, err := l.Peek(ctx, "1.2.3.4")
		return err == nil && r.Allowed && r.Remaining == 1
	}, "back on Redis, which kept its count")
}

// TestMemoryIsBounded: flooding with keys never keeps more than the bound;
// a busy key survives the flood.
func TestMemoryIsBounded(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.NewMemory(ratelimit.Rate{N: 3, Per: time.Hour}, 1600)
	for range 3 {
		_, _ = l.Allow(ctx, "attacker")
	}
	for i := range 100000 {
		_, _ = l.Allow(ctx, "junk-"+strconv.Itoa(i))
		if i%500 == 0 {
			r, _ := l.Peek(ctx, "attacker")
			require.False(t, r.Allowed, "a key in use is not evicted by a flood")
		}
	}
	require.LessOrEqual(t, ratelimit.MemoryKeys(l), 1600)
}

// TestMiddleware: a plain limit, and one that counts failures only.
func TestMiddleware(t *testing.T) {
	newApp := func(cfg ratelimit.Config) *fiber.App {
		app := httpserver.NewApp(config.HTTP{TrustedProxies: "0.0.0.0/0"}, zap.NewNop())
		app.Post("/x", ratelimit.New(cfg), func(c *fiber.Ctx) error {
			if c.Query("fail") != "" {
				return httpserver.BadRequest("invalid_code", "no")
			}
			return c.SendString("ok")
		})
		return app
	}
	send := func(app *fiber.App, ip string, fail bool) (int, string) {
		url := "/x"
		if fail {
			url += "?fail=1"
		}
		req := httptest.NewRequest("POST", url, nil)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := app.Test(req, -1)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}

	plain := newApp(ratelimit.Config{Limiter: ratelimit.NewMemory(ratelimit.Rate{N: 2, Per: time.Minute}, 100)})
	require.Equal(t, 200, first(send(plain, "1.1.1.1", false)))
	require.Equal(t, 200, first(send(plain, "1.1.1.1", false)))
	status, retry := send(plain, "1.1.1.1", false)
	require.Equal(t, 429, status)
	require.Equal(t, "30", retry)
	require.Equal(t, 200, first(send(plain, "2.2.2.2", false)), "per address")

	failures := newApp(ratelimit.Config{Limiter: ratelimit.NewMemory(ratelimit.Rate{N: 3, Per: time.Minute}, 100), FailuresOnly: true})
	for range 20 {
		require.Equal(t, 200, first(send(failures, "3.3.3.3", false)), "successes are not counted")
	}
	for range 3 {
		require.Equal(t, 400, first(send(failures, "3.3.3.3", true)))
	}
	status, retry = send(failures, "3.3.3.3", false)
	require.Equal(t, 429, status, "three failures use the limit up, for successes too")
	require.NotEmpty(t, retry)
	require.Equal(t, 200, first(send(failures, "4.4.4.4", false)))

	// IPv6 counts by /64.
	require.Equal(t, 200, first(send(plain, "2001:db8:1:2::1", false)))
	require.Equal(t, 200, first(send(plain, "2001:db8:1:2::ffff", false)))
	require.Equal(t, 429, first(send(plain, "2001:db8:1:2:aaaa::1", false)))
	require.Equal(t, 200, first(send(plain, "2001:db8:1:3::1", false)))

	skipped := newApp(ratelimit.Config{Limiter: ratelimit.NewMemory(ratelimit.Rate{N: 1, Per: time.Minute}, 100),
		Next: func(c *fiber.Ctx) bool { return true }})
	for range 5 {
		require.Equal(t, 200, first(send(skipped, "5.5.5.5", false)))
	}
	none := newApp(ratelimit.Config{})
	for range 5 {
		require.Equal(t, 200, first(send(none, "5.5.5.5", false)), "a nil limiter limits nothing")
	}
}

func first(status int, _ string) int { return status }
