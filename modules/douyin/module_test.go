package douyin_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/douyin"
	"github.com/wxlogin/wxlogin/modules/douyin/douyinemu"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
)

func TestModuleJoinsTheRegistry(t *testing.T) {
	e := newEnv(t)
	var (
		reg    *provider.Registry
		client douyin.Client
	)
	fxtest.New(t,
		fx.Supply(config.Apps{e.app()}, e.log),
		platformtoken.Module,
		douyin.Module,
		provider.Module,
		fx.Populate(&reg, &client),
	).RequireStart().RequireStop()
	app, p, err := reg.Resolve(appID)
	require.NoError(t, err)
	assert.Equal(t, "douyin", p.Platform())
	dev := e.login(t, douyinemu.LoginRequest{Anonymous: true})
	id, err := p.Login(context.Background(), app, provider.Credentials{AnonymousCode: dev.AnonymousCode})
	require.NoError(t, err)
	assert.Equal(t, dev.AnonymousOpenID, id.AnonymousOpenID)
	_, err = client.AccessToken(context.Background(), appID)
	require.NoError(t, err)
}

func TestModuleRefusesABadApp(t *testing.T) {
	app := fx.New(fx.NopLogger, fx.Supply(config.Apps{{Platform: "douyin", AppID: appID, Secret: "s", BaseURL: "nope"}}),
		platformtoken.Module, douyin.Module, fx.Invoke(func(douyin.Client) {}))
	assert.ErrorContains(t, app.Err(), "base URL")
}
