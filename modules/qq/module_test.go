package qq_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/qq"
	"github.com/wxlogin/wxlogin/modules/qq/qqemu"
)

func TestModuleJoinsTheRegistry(t *testing.T) {
	e := newEnv(t)
	apps := config.Apps{e.app()}
	var (
		reg    *provider.Registry
		client qq.Client
	)
	fxtest.New(t,
		fx.Supply(apps, e.log),
		platformtoken.Module,
		qq.Module,
		provider.Module,
		fx.Populate(&reg, &client),
	).RequireStart().RequireStop()

	app, p, err := reg.Resolve(appID)
	require.NoError(t, err)
	assert.Equal(t, "qq", p.Platform())
	dev := e.login(t, qqemu.LoginRequest{OpenID: "FROMFX"})
	id, err := p.Login(context.Background(), app, provider.Credentials{Code: dev.Code})
	require.NoError(t, err)
	assert.Equal(t, "FROMFX", id.OpenID)
	_, err = client.AccessToken(context.Background(), appID)
	require.NoError(t, err)
	_, ok := p.(provider.PhoneProvider)
	assert.True(t, ok)
}

type countingClient struct {
	qq.Client
	calls *int
}

func (c countingClient) Code2Session(ctx context.Context, appid, code string) (qq.Session, error) {
	*c.calls++
	return c.Client.Code2Session(ctx, appid, code)
}

func TestModuleClientReplacedWithDecorate(t *testing.T) {
	e := newEnv(t)
	calls := 0
	var reg *provider.Registry
	fxtest.New(t,
		fx.Supply(config.Apps{e.app()}),
		platformtoken.Module,
		qq.Module,
		provider.Module,
		fx.Decorate(func(c qq.Client) qq.Client { return countingClient{c, &calls} }),
		fx.Populate(&reg),
	).RequireStart().RequireStop()
	app, p, err := reg.Resolve(appID)
	require.NoError(t, err)
	_, err = p.Login(context.Background(), app, provider.Credentials{Code: e.login(t, qqemu.LoginRequest{}).Code})
	require.NoError(t, err)
	assert.Equal(t, 1, calls)
}

func TestModuleRefusesABadApp(t *testing.T) {
	app := fx.New(fx.NopLogger, fx.Supply(config.Apps{{Platform: "qq", AppID: appID}}), platformtoken.Module, qq.Module,
		fx.Invoke(func(qq.Client) {}))
	assert.ErrorContains(t, app.Err(), "secret")
}
