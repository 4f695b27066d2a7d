package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/provider"
)

type fake struct{ platform string }

func (f fake) Platform() string { return f.platform }
func (f fake) Login(_ context.Context, app config.App, c provider.Credentials) (provider.Identity, error) {
	return provider.Identity{Provider: f.platform, AppID: app.AppID, OpenID: "o-" + c.Code}, nil
}

var apps = config.Apps{
	{Platform: "wechat", AppID: "wxA", Kind: "miniprogram"},
	{Platform: "qq", AppID: "1101", Kind: "miniprogram"},
}

func TestRegistryResolves(t *testing.T) {
	r, err := provider.NewRegistry(apps, []provider.Provider{fake{"wechat"}, fake{"qq"}})
	require.NoError(t, err)
	app, p, err := r.Resolve("1101")
	require.NoError(t, err)
	require.Equal(t, "qq", app.Platform)
	require.Equal(t, "qq", p.Platform())
	_, _, err = r.Resolve("nope")
	require.ErrorIs(t, err, provider.ErrUnknownApp)
	require.Equal(t, apps, r.Apps())
}

func TestRegistryRefusesAnAppWithoutProvider(t *testing.T) {
	_, err := provider.NewRegistry(apps, []provider.Provider{fake{"wechat"}})
	require.ErrorContains(t, err, "qq (1101)")
	_, err = provider.NewRegistry(apps, []provider.Provider{fake{"wechat"}, fake{"qq"}, fake{"qq"}})
	require.ErrorContains(t, err, "two providers")
}

func TestModuleCollectsTheGroup(t *testing.T) {
	var r *provider.Registry
	app := fxtest.New(t,
		fx.Supply(apps),
		fx.Provide(
			provider.AsProvider(func() fake { return fake{"wechat"} }),
			provider.AsProvider(func() fake { return fake{"qq"} }),
		),
		provider.Module,
		fx.Populate(&r),
	)
	app.RequireStart().RequireStop()
	_, p, err := r.Resolve("wxA")
	require.NoError(t, err)
	id, err := p.Login(context.Background(), apps[0], provider.Credentials{Code: "c"})
	require.NoError(t, err)
	require.Equal(t, "o-c", id.OpenID)
}

func TestClassify(t *testing.T) {
	err := fmt.Errorf("login: %w", &provider.Error{Platform: "qq", Kind: provider.KindRateLimited, Code: "45011"})
	platform, kind, ok := provider.Classify(err)
	require.True(t, ok)
	require.Equal(t, "qq", platform)
	require.Equal(t, provider.KindRateLimited, kind)
	require.Equal(t, "rate_limited", kind.String())
	_, _, ok = provider.Classify(errors.New("other"))
	require.False(t, ok)
}

func TestSecretNeverPrints(t *testing.T) {
	id := provider.Identity{OpenID: "o", SessionKey: "SECRET-KEY"}
	b, err := json.Marshal(id)
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprint(id), fmt.Sprintf("%+v %#v %q %x %s", id, id, id.SessionKey, id.SessionKey, id.SessionKey), string(b)} {
		require.NotContains(t, s, "SECRET-KEY")
	}
	require.Equal(t, "SECRET-KEY", id.SessionKey.Reveal())
}
