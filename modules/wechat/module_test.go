package wechat

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
)

func TestModuleWithoutRedisUsesMemory(t *testing.T) {
	f := newFake(t)
	logger, logs := observed()
	var (
		client Client
		tokens *TokenManager
		store  TokenStore
	)
	app := fxtest.New(t,
		fx.Supply(f.config(), logger),
		Module,
		fx.Populate(&client, &tokens, &store),
	)
	app.RequireStart()
	defer app.RequireStop()

	assert.IsType(t, &MemoryStore{}, store)
	assert.Same(t, store, tokens.Store())
	assert.Equal(t, testAppID, client.AppID())
	s, err := client.Code2Session(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, testOpenID, s.OpenID)
	assert.NotEmpty(t, logs.FilterMessage("wechat call").All(), "the graph's logger is used")
}

func TestModuleWithRedisSharesThroughIt(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	f := newFake(t)
	var (
		client Client
		store  TokenStore
	)
	app := fxtest.New(t,
		fx.Supply(f.config(), config.Redis{Addr: testutil.RedisAddr, Prefix: prefix}, zap.NewNop()),
		fx.Provide(func() redis.UniversalClient { return rdb }),
		Module,
		fx.Populate(&client, &store),
	)
	app.RequireStart()
	defer app.RequireStop()

	require.IsType(t, &RedisStore{}, store)
	tok, err := client.AccessToken(context.Background())
	require.NoError(t, err)
	stored, err := rdb.HGet(context.Background(), prefix+"wechat:access_token:"+testAppID, "v").Result()
	require.NoError(t, err)
	assert.Equal(t, tok, stored)
}

func TestModuleStoreReplacedWithDecorate(t *testing.T) {
	f := newFake(t)
	mine := NewMemoryStore()
	var tokens *TokenManager
	app := fxtest.New(t,
		fx.Supply(f.config()),
		Module,
		fx.Decorate(func(TokenStore) TokenStore { return mine }),
		fx.Populate(&tokens),
	)
	app.RequireStart()
	defer app.RequireStop()
	assert.Same(t, mine, tokens.Store())
}

func TestModuleRefusesAnIncompleteConfig(t *testing.T) {
	app := fx.New(fx.NopLogger, fx.Supply(config.WeChat{BaseURL: "https://api.weixin.qq.com"}), Module, fx.Invoke(func(Client) {}))
	assert.Error(t, app.Err())
}
