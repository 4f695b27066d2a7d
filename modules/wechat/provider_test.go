package wechat_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/emulator"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

var brand = config.Apps{
	{Platform: "wechat", AppID: "wxMiniA0000000001", Secret: "secret-of-mini-A-0123456789abcdef", Kind: "miniprogram"},
	{Platform: "wechat", AppID: "wxMiniB0000000002", Secret: "secret-of-mini-B-0123456789abcdef", Kind: "miniprogram"},
	{Platform: "wechat", AppID: "wxPageH0000000003", Secret: "secret-of-page-H-0123456789abcdef", Kind: "oauth"},
}

func newProvider(t *testing.T) (*wechat.Provider, *emulator.Emulator) {
	t.Helper()
	emu, url := emulator.NewTestServer(t, brand)
	cs, err := wechat.NewClients(config.WeChat{BaseURL: url, Timeout: 5 * time.Second, StableToken: true}, brand)
	require.NoError(t, err)
	return wechat.NewProvider(cs, nil), emu
}

func kindOf(t *testing.T, err error) provider.Kind {
	t.Helper()
	platform, kind, ok := provider.Classify(err)
	require.True(t, ok, "a classified error: %v", err)
	require.Equal(t, "wechat", platform)
	return kind
}

func TestProviderMiniPrograms(t *testing.T) {
	p, emu := newProvider(t)
	ctx := context.Background()
	require.Equal(t, "wechat", p.Platform())
	for _, app := range brand[:2] {
		dev, err := emu.Login(emulator.LoginRequest{AppID: app.AppID, OpenID: "o-" + app.AppID, UnionID: "u-person"})
		require.NoError(t, err)
		id, err := p.Login(ctx, app, provider.Credentials{Code: dev.Code})
		require.NoError(t, err, "each app uses its own credentials")
		require.Equal(t, provider.Identity{Provider: "wechat", Kind: "miniprogram", AppID: app.AppID,
			OpenID: "o-" + app.AppID, UnionID: "u-person", SessionKey: provider.Secret(dev.SessionKey)}, id)
	}
	other, err := emu.Login(emulator.LoginRequest{AppID: brand[1].AppID})
	require.NoError(t, err)
	_, err = p.Login(ctx, brand[0], provider.Credentials{Code: other.Code})
	require.Equal(t, provider.KindInvalidCode, kindOf(t, err), "a code of another app")

	// Phone numbers by code and by legacy data, for the app they belong to.
	dev, err := emu.Login(emulator.LoginRequest{AppID: brand[1].AppID, OpenID: "o-phone"})
	require.NoError(t, err)
	ph, err := emu.Phone(emulator.PhoneRequest{AppID: brand[1].AppID, OpenID: "o-phone", Phone: "13800000000"})
	require.NoError(t, err)
	got, err := p.Phone(ctx, brand[1], provider.PhoneRequest{Code: ph.Code})
	require.NoError(t, err)
	require.Equal(t, provider.Phone{Number: "13800000000", PureNumber: "13800000000", CountryCode: "86"}, got)
	got, err = p.Phone(ctx, brand[1], provider.PhoneRequest{EncryptedData: ph.EncryptedData, IV: ph.IV, SessionKey: provider.Secret(dev.SessionKey)})
	require.NoError(t, err)
	require.Equal(t, "13800000000", got.PureNumber)
	_, err = p.Phone(ctx, brand[0], provider.PhoneRequest{EncryptedData: ph.EncryptedData, IV: ph.IV, SessionKey: provider.Secret(dev.SessionKey)})
	require.ErrorIs(t, err, wxcrypto.ErrAppIDMismatch, "data of app B is not app A's")
	_, err = p.Phone(ctx, brand[1], provider.PhoneRequest{EncryptedData: ph.EncryptedData, IV: ph.IV})
	require.ErrorIs(t, err, wxcrypto.ErrStaleSessionKey, "no stored session key: log in again")
	_, err = p.Phone(ctx, brand[2], provider.PhoneRequest{Code: "x"})
	require.Equal(t, provider.KindUnsupported, kindOf(t, err), "OAuth apps have no phone numbers")
}

func TestProviderOAuth(t *testing.T) {
	p, emu := newProvider(t)
	ctx := context.Background()
	page := brand[2]
	login := func(req emulator.LoginRequest) (provider.Identity, error) {
		req.AppID = page.AppID
		dev, err := emu.Login(req)
		require.NoError(t, err)
		return p.Login(ctx, page, provider.Credentials{Code: dev.Code})
	}

	id, err := login(emulator.LoginRequest{OpenID: "o-h5", UnionID: "u-person", Nickname: "小明", AvatarURL: "https://thirdwx.qlogo.cn/mmopen/x/132"})
	require.NoError(t, err)
	require.Equal(t, provider.Identity{Provider: "wechat", Kind: "oauth", AppID: page.AppID, OpenID: "o-h5", UnionID: "u-person",
		Nickname: "小明", AvatarURL: "https://thirdwx.qlogo.cn/mmopen/x/132"}, id, "no session key; the profile comes along")

	id, err = login(emulator.LoginRequest{OpenID: "o-base", UnionID: "u-b", Scope: "snsapi_base"})
	require.NoError(t, err)
	require.Equal(t, "o-base", id.OpenID)
	require.Empty(t, id.UnionID, "snsapi_base gives no unionid")
	require.Empty(t, id.Nickname)

	_, err = login(emulator.LoginRequest{OpenID: "o-real", Snapshot: true})
	require.ErrorIs(t, err, wechat.ErrSnapshotUser)
	require.Equal(t, provider.KindRefused, kindOf(t, err), "never an account for a snapshot user")

	// The profile is a bonus: WeChat failing to give it does not fail the login.
	require.NoError(t, emu.AddFault(emulator.Fault{Path: emulator.PathOAuthUserInfo, ErrCode: -1, Count: 1}))
	id, err = login(emulator.LoginRequest{OpenID: "o-busy", UnionID: "u-busy", Nickname: "x"})
	require.NoError(t, err)
	require.Equal(t, "u-busy", id.UnionID)
	require.Empty(t, id.Nickname)

	dev, err := emu.Login(emulator.LoginRequest{AppID: page.AppID})
	require.NoError(t, err)
	_, err = p.Login(ctx, page, provider.Credentials{Code: dev.Code})
	require.NoError(t, err)
	_, err = p.Login(ctx, page, provider.Credentials{Code: dev.Code})
	require.Equal(t, provider.KindInvalidCode, kindOf(t, err), "OAuth codes are single use")

	require.NoError(t, emu.AddFault(emulator.Fault{Path: emulator.PathOAuthToken, ErrCode: 40125, Count: 1}))
	_, err = login(emulator.LoginRequest{})
	require.Equal(t, provider.KindMisconfigured, kindOf(t, err))
	require.NoError(t, emu.AddFault(emulator.Fault{Path: emulator.PathOAuthToken, HTTPStatus: 502, Count: 1}))
	_, err = login(emulator.LoginRequest{})
	require.Equal(t, provider.KindUnavailable, kindOf(t, err))
}
