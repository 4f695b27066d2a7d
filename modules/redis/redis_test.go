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
	cfg := testutil.RedisConfig(t)
	var client *goredis.Client
	var checks struct {
		fx.In
		All []health.Check `group:"readiness"`
	}
	app := fxtest.New(t, fx.Supply(cfg), redis.Module, fx.Populate(&client, &checks))
	app.RequireStart()
	ctx := context.Background()
	require.NoError(t, client.Set(ctx, cfg.Prefix+"k", "v", 0).Err())
	require.Len(t, checks.All, 1)
	require.Equal(t, "redis", checks.All[0].Name)
	require.NoError(t, checks.All[0].Run(ctx))
	app.RequireStop()
	require.Error(t, client.Ping(ctx).Err(), "closed on stop")
}

func TestStartFailsWhenUnreachable(t *testing.T) {
	app := fx.New(fx.NopLogger, fx.Supply(config.Redis{Addr: "127.0.0.1:1"}), redis.Module, fx.Invoke(func(*goredis.Client) {}))
	require.ErrorContains(t, app.Start(context.Background()), "not reachable")
}
