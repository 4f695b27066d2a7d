package redis_test

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/health"
	"github.com/wxlogin/wxlogin/modules/redis"
)

func TestModule(t *testing.T) {
	for _, c := range []struct {
		name    string
		cfg     func(t *testing.T) config.Redis
		cluster bool
	}{
		{"single", func(t *testing.T) config.Redis { return testutil.RedisConfig(t) }, false},
		{"cluster", func(t *testing.T) config.Redis { return testutil.RedisClusterConfig(t) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg(t)
			var client goredis.UniversalClient
			var checks struct {
				fx.In
				All []health.Check `group:"readiness"`
			}
			app := fxtest.New(t, fx.Supply(cfg), redis.Module, fx.Populate(&client, &checks))
			app.RequireStart()
			_, isCluster := client.(*goredis.ClusterClient)
			require.Equal(t, c.cluster, isCluster, "several addresses mean a cluster client")
			ctx := context.Background()
			for _, k := range []string{"a", "b", "c", "d"} { // keys of several slots
				require.NoError(t, client.Set(ctx, cfg.Prefix+k, "v", 0).Err())
			}
			require.Len(t, checks.All, 1)
			require.Equal(t, "redis", checks.All[0].Name)
			require.NoError(t, checks.All[0].Run(ctx))
			app.RequireStop()
			require.Error(t, client.Ping(ctx).Err(), "closed on stop")
		})
	}
}

func TestStartFailsWhenUnreachable(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:1", "127.0.0.1:1,127.0.0.1:2"} {
		app := fx.New(fx.NopLogger, fx.Supply(config.Redis{Addr: addr}), redis.Module, fx.Invoke(func(goredis.UniversalClient) {}))
		require.ErrorContains(t, app.Start(context.Background()), "not reachable")
	}
}
