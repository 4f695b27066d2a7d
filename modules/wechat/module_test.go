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
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// testApps is the one mini program the fake knows, and an app of another platform.
var testApps = config.Apps{
	{Platform: "wechat", AppID: testAppID, Secret: testSecret, Kind: "miniprogram"},
	{Platform: "qq", AppID: "1101", Secret: "not WeChat's", Kind: "miniprogram"},
}

func TestModuleWithoutRedisUsesMemory(t *testing.T) {
	f := newFake(t)
	logger, logs := observed()
	var (
		clients *Clients
		store   platformtoken.Store
		group   struct {
			fx.In
			Providers []provider.Provider `group:"providers"`
		}
	)
	app := fxtest.New(t,
		fx.Supply(f.config(), testApps, logger),
		Module,
		platformtoken.Module,
		fx.Populate(&clients, &store, &group),
	)
	app.RequireStart()
	defer app.RequireStop()

	assert.IsType(t, &platformtoken.MemoryStore{}, store)
	require.Equal(t, []string{testAppID}, clients.AppIDs(), "one client per WeChat app, none for other platforms")
	client, ok := clients.Client(testAppID)
	require.True(t, ok)
	assert.Same(t, store, client.(*HTTPClient).Tokens().Store())
	s, err := client.Code2Session(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, testOpenID, s.OpenID)
	assert.NotEmpty(t, logs.FilterMessage("wechat call").All(), "the graph's logger is used")

	require.Len(t, group.Providers, 1, "the WeChat provider joins the providers group")
	id, err := group.Providers[0].Login(context.Background(), testApps[0], provider.Credentials{Code: "c"})
	require.NoError(t, err)
	assert.Equal(t, provider.Identity{Provider: "wechat", Kind: "miniprogram", AppID: testAppID, OpenID: testOpenID,
		UnionID: "oUNION", SessionKey: testSessionKey}, id)
}

func TestModuleWithRedisSharesThroughIt(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	f := newFake(t)
	var clients *Clients
	var store platformtoken.Store
	app := fxtest.New(t,
		fx.Supply(f.config(), testApps, config.Redis{Addr: testutil.RedisAddr, Prefix: prefix}, zap.NewNop()),
		fx.Provide(func() redis.UniversalClient { return rdb }),
		Module,
		platformtoken.Module,
		fx.Populate(&clients, &store),
	)
	app.RequireStart()
	defer app.RequireStop()

	require.IsType(t, &platformtoken.RedisStore{}, store)
	client, _ := clients.Client(testAppID)
	tok, err := client.AccessToken(context.Background())
	require.NoError(t, err)
	stored, err := rdb.HGet(context.Background(), prefix+"access_token:{"+testAppID+"}", "v").Result()
	require.NoError(t, err)
	assert.Equal(t, tok, stored)
}

func TestModuleStoreReplacedWithDecorate(t *testing.T) {
	f := newFake(t)
	mine := platformtoken.NewMemoryStore()
	var clients *Clients
	app := fxtest.New(t,
		fx.Supply(f.config(), testApps),
		Module,
		platformtoken.Module,
		fx.Decorate(func(platformtoken.Store) platformtoken.Store { return mine }),
		fx.Populate(&clients),
	)
	app.RequireStart()
	defer app.RequireStop()
	client, _ := clients.Client(testAppID)
	assert.Same(t, mine, client.(*HTTPClient).Tokens().Store())
}

// renamed wraps a client to show that decorating *Clients replaces them.
type renamed struct{ Client }

func (renamed) Code2Session(context.Context, string) (Session, error) {
	return Session{OpenID: "o-decorated", SessionKey: "k"}, nil
}

func TestModuleClientsReplacedWithDecorate(t *testing.T) {
	f := newFake(t)
	var p *Provider
	app := fxtest.New(t,
		fx.Supply(f.config(), testApps),
		Module,
		platformtoken.Module,
		fx.Decorate(func(cs *Clients) *Clients {
			return cs.Map(func(_ string, c Client) Client { return renamed{c} })
		}),
		fx.Populate(&p),
	)
	app.RequireStart()
	defer app.RequireStop()
	id, err := p.Login(context.Background(), testApps[0], provider.Credentials{Code: "c"})
	require.NoError(t, err)
	assert.Equal(t, "o-decorated", id.OpenID)
}

func TestModuleRefusesAnIncompleteApp(t *testing.T) {
	app := fx.New(fx.NopLogger, fx.Supply(config.WeChat{BaseURL: "https://api.weixin.qq.com"}, config.Apps{{Platform: "wechat", AppID: "wxA"}}),
		Module, platformtoken.Module, fx.Invoke(func(*Clients) {}))
	assert.ErrorContains(t, app.Err(), "wxA")
}
