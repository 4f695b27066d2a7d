package platformtoken

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
)

func TestModuleWithoutRedisUsesMemory(t *testing.T) {
	var store Store
	fxtest.New(t, Module, fx.Populate(&store)).RequireStart().RequireStop()
	assert.IsType(t, &MemoryStore{}, store)
}

func TestModuleWithRedisClientSharesThroughIt(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	var store Store
	fxtest.New(t,
		fx.Supply(config.Redis{Addr: testutil.RedisAddr, Prefix: prefix}),
		fx.Provide(func() *redis.Client { return rdb }),
		Module,
		fx.Populate(&store),
	).RequireStart().RequireStop()
	require.IsType(t, &RedisStore{}, store)
	ctx := context.Background()
	require.NoError(t, store.Set(ctx, "1101", Token{Value: "v", RefreshAt: time.Now().Add(time.Hour), ExpiresAt: time.Now().Add(2 * time.Hour)}))
	n, err := rdb.Exists(ctx, prefix+"access_token:{1101}").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "keys carry config.Redis.Prefix")
}

func TestModuleWithUniversalClient(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	var store Store
	fxtest.New(t,
		fx.Supply(config.Redis{Prefix: prefix}),
		fx.Provide(func() redis.UniversalClient { return rdb }),
		Module,
		fx.Populate(&store),
	).RequireStart().RequireStop()
	assert.IsType(t, &RedisStore{}, store)
}

func TestModuleStoreReplacedWithDecorate(t *testing.T) {
	mine := NewMemoryStore()
	var store Store
	fxtest.New(t,
		Module,
		fx.Decorate(func(Store) Store { return mine }),
		fx.Populate(&store),
	).RequireStart().RequireStop()
	assert.Same(t, mine, store)
}
