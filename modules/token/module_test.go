package token_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/token/tokentest"
)

// TestModule boots the fx module for each strategy, with and without Redis
// and the cache, uses the strategy, and checks that stopping leaves no
// goroutine behind and that the logs never show a token.
func TestModule(t *testing.T) {
	cases := []struct {
		strategy, alg string
		redis         bool
		cacheSize     int
	}{
		{token.NameJWT, token.AlgHS256, false, 100},
		{token.NameJWT, token.AlgEdDSA, true, 100},
		{token.NameJWT, token.AlgHS256, true, 0},
		{token.NameDB, "", false, 100},
		{token.NameDB, "", true, 0},
		{token.NameRedis, "", true, 100},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s-%s-redis=%v-cache=%d", c.strategy, c.alg, c.redis, c.cacheSize)
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			client := testutil.SQLite(t)
			cfg := testConfig(t, c.strategy, c.alg)
			if cfg.JWTAlg == "" {
				cfg.JWTAlg = token.AlgHS256
			}
			cfg.CacheSize = c.cacheSize
			redisCfg := config.Redis{}
			core, logs := observer.New(zapcore.DebugLevel)
			opts := []fx.Option{
				fx.NopLogger,
				fx.Supply(cfg, client, zap.New(core)),
				token.Module,
			}
			if c.redis {
				rdb, prefix := testutil.Redis(t)
				redisCfg = config.Redis{Addr: testutil.RedisAddr, Prefix: prefix}
				opts = append(opts, fx.Supply(fx.Annotate(rdb, fx.As(new(redis.UniversalClient)))))
			}
			opts = append(opts, fx.Supply(redisCfg))
			var st token.Strategy
			var keys *token.KeySet
			var feed token.Feed
			opts = append(opts, fx.Populate(&st, &keys, &feed))
			app := fxtest.New(t, opts...)
			app.RequireStart()

			if st.Name() != c.strategy {
				t.Fatalf("strategy %q, want %q", st.Name(), c.strategy)
			}
			if _, cached := st.(*token.Cached); cached != (c.cacheSize > 0) {
				t.Fatalf("cached = %v with cache size %d", cached, c.cacheSize)
			}
			_, isRedisFeed := feed.(*token.RedisFeed)
			if isRedisFeed != c.redis {
				t.Fatalf("feed %T with redis=%v", feed, c.redis)
			}
			_, hasJWKS := keys.JWKS()
			if hasJWKS != (cfg.JWTAlg == token.AlgEdDSA) {
				t.Fatalf("JWKS published = %v for %s", hasJWKS, cfg.JWTAlg)
			}

			u := tokentest.EntSubjects(client)(t)
			p0, err := st.Issue(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			verifyOK(t, st, p0.AccessToken)
			p1, err := st.Refresh(ctx, p0.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Refresh(ctx, p0.RefreshToken); !errors.Is(err, token.ErrRefreshReused) {
				t.Fatalf("reuse: %v", err)
			}
			if _, err := st.Verify(ctx, p1.AccessToken); !errors.Is(err, token.ErrUnauthenticated) {
				t.Fatalf("after reuse: %v", err)
			}
			app.RequireStop()
			noBackgroundGoroutines(t)

			if logs.FilterMessageSnippet("reused").Len() == 0 && logs.FilterMessageSnippet("presented again").Len() == 0 {
				t.Error("the reuse was not logged")
			}
			for _, e := range logs.All() {
				line := fmt.Sprint(e.Message, e.ContextMap())
				for _, secret := range []string{p0.AccessToken, p0.RefreshToken, p1.AccessToken, p1.RefreshToken, cfg.Secret} {
					if strings.Contains(line, secret) {
						t.Fatalf("a log entry shows a secret: %s", line)
					}
				}
				_, seed, _ := strings.Cut(cfg.JWTKeys, ":")
				if strings.Contains(line, seed) {
					t.Fatalf("a log entry shows a key: %s", line)
				}
			}
		})
	}
}

func TestModuleRedisStrategyNeedsRedis(t *testing.T) {
	cfg := testConfig(t, token.NameRedis, token.AlgHS256)
	var st token.Strategy
	app := fx.New(
		fx.NopLogger,
		fx.Supply(cfg, config.Redis{}, testutil.SQLite(t), zap.NewNop()),
		token.Module,
		fx.Populate(&st),
	)
	err := app.Err()
	if err == nil || !strings.Contains(err.Error(), "APP_REDIS_ADDR") {
		t.Fatalf("got %v, want a start error naming APP_REDIS_ADDR", err)
	}
}
