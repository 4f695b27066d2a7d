package alipay_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/alipay"
	"github.com/wxlogin/wxlogin/modules/alipay/alipayemu"
	"github.com/wxlogin/wxlogin/modules/provider"
)

func TestModuleJoinsTheRegistry(t *testing.T) {
	e := newEnv(t)
	var reg *provider.Registry
	fxtest.New(t,
		fx.Supply(config.Apps{e.app()}, e.log),
		alipay.Module,
		provider.Module,
		fx.Populate(&reg),
	).RequireStart().RequireStop()
	app, p, err := reg.Resolve(appID)
	require.NoError(t, err)
	assert.Equal(t, "alipay", p.Platform())
	id, err := p.Login(context.Background(), app, provider.Credentials{Code: e.login(t, alipayemu.LoginRequest{OpenID: "0fx"}).Code})
	require.NoError(t, err)
	assert.Equal(t, "0fx", id.OpenID)
	pp, ok := p.(provider.PhoneProvider)
	require.True(t, ok)
	res, err := e.emu.Phone(alipayemu.PhoneRequest{AppID: appID, Phone: "13800000000"})
	require.NoError(t, err)
	ph, err := pp.Phone(context.Background(), app, provider.PhoneRequest{Response: res.Response})
	require.NoError(t, err)
	assert.Equal(t, "13800000000", ph.Number)
}

func TestModuleRefusesABadApp(t *testing.T) {
	app := fx.New(fx.NopLogger, fx.Supply(config.Apps{{Platform: "alipay", AppID: appID, PrivateKey: "x"}}),
		alipay.Module, fx.Invoke(func(alipay.Client) {}))
	assert.ErrorContains(t, app.Err(), "private_key")
}

// In development, config gives an Alipay app without keys the development
// material, and NewDevelopment builds an emulator that agrees with it.
func TestDevelopmentKeysAgree(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.LoadFrom(func(name string) (string, bool) {
		v, ok := map[string]string{"APP_DATA_DIR": dir, "APP_APPS": `[{"platform":"alipay","appid":"` + appID + `"}]`}[name]
		return v, ok
	})
	require.NoError(t, err)
	emu, err := alipayemu.NewDevelopment(cfg)
	require.NoError(t, err)
	srv := newServer(t, emu)
	app := cfg.Apps[0]
	app.BaseURL = srv + "/alipay"
	c, err := alipay.NewClient(config.Apps{app})
	require.NoError(t, err)
	dev, err := emu.Login(alipayemu.LoginRequest{})
	require.NoError(t, err)
	tok, err := c.OAuthToken(context.Background(), appID, dev.Code)
	require.NoError(t, err)
	assert.Equal(t, dev.OpenID, tok.OpenID)
	res, err := emu.Phone(alipayemu.PhoneRequest{Phone: "13800000000"})
	require.NoError(t, err)
	ph, err := c.PhoneNumber(context.Background(), appID, res.Response)
	require.NoError(t, err)
	assert.Equal(t, "13800000000", ph.Number)
}
