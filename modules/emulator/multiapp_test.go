package emulator_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

// Three apps of one brand: two mini programs and an Official Account page.
var brandApps = config.Apps{
	{Platform: "wechat", AppID: "wxMiniA0000000001", Secret: "secret-of-mini-A-0123456789abcdef", Kind: "miniprogram"},
	{Platform: "wechat", AppID: "wxMiniB0000000002", Secret: "secret-of-mini-B-0123456789abcdef", Kind: "miniprogram"},
	{Platform: "wechat", AppID: "wxPageH0000000003", Secret: "secret-of-page-H-0123456789abcdef", Kind: "oauth"},
	{Platform: "qq", AppID: "1101000000", Secret: "a QQ app is not WeChat's"},
}

func newBrandEnv(t *testing.T) *env {
	t.Helper()
	clk := &clock{now: time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)}
	emu, u := emulator.NewTestServer(t, brandApps, emulator.WithClock(clk.Now))
	return &env{t: t, emu: emu, url: u, clk: clk}
}

func (e *env) exchange(app config.App, code string) answer {
	e.t.Helper()
	path := emulator.PathCode2Session
	q := url.Values{"appid": {app.AppID}, "secret": {app.Secret}, "grant_type": {"authorization_code"}}
	if app.Kind == "oauth" {
		path = emulator.PathOAuthToken
		q.Set("code", code)
	} else {
		q.Set("js_code", code)
	}
	return e.get(path, q)
}

func TestEveryAppWithItsOwnCredentialsAndCodes(t *testing.T) {
	e := newBrandEnv(t)
	miniA, miniB, page := brandApps[0], brandApps[1], brandApps[2]
	require.Equal(t, []string{miniA.AppID, miniB.AppID, page.AppID}, e.emu.AppIDs(), "only WeChat's apps")
	require.Equal(t, miniA.AppID, e.emu.AppID(), "the first app is the default")

	a := e.login(emulator.LoginRequest{AppID: miniA.AppID, OpenID: "o-in-A", UnionID: "u-person"})
	b := e.login(emulator.LoginRequest{AppID: miniB.AppID, OpenID: "o-in-B"})
	def := e.login(emulator.LoginRequest{})
	_, found := e.emu.SessionKey(miniB.AppID, def.OpenID)
	require.False(t, found, "a login without appid is the default app's")

	// A code is only valid for the app it was made for.
	requireErrcode(t, e.exchange(miniB, a.Code), 40029, "invalid code")
	requireErrcode(t, e.exchange(miniA, b.Code), 40029, "invalid code")
	ok := e.exchange(miniA, a.Code)
	require.Equal(t, "o-in-A", ok.str("openid"))
	require.Equal(t, "u-person", ok.str("unionid"))
	require.Equal(t, "o-in-B", e.exchange(miniB, b.Code).str("openid"))

	// Each app accepts its own secret only.
	wrong := miniB
	wrong.Secret = miniA.Secret
	requireErrcode(t, e.exchange(wrong, e.login(emulator.LoginRequest{AppID: miniB.AppID}).Code), 40125, "invalid appsecret")
	qq := brandApps[3]
	requireErrcode(t, e.exchange(qq, "x"), 40013, "invalid appid")

	// A mini program's code is no OAuth code, and the other way round [U].
	requireErrcode(t, e.get(emulator.PathOAuthToken, url.Values{"appid": {miniA.AppID}, "secret": {miniA.Secret},
		"code": {e.login(emulator.LoginRequest{AppID: miniA.AppID}).Code}, "grant_type": {"authorization_code"}}), 40013, "invalid appid")
	requireErrcode(t, e.get(emulator.PathCode2Session, url.Values{"appid": {page.AppID}, "secret": {page.Secret},
		"js_code": {e.login(emulator.LoginRequest{AppID: page.AppID}).Code}}), 40013, "invalid appid")

	// The same openid in two apps is two users with their own session keys.
	x := e.login(emulator.LoginRequest{AppID: miniA.AppID, OpenID: "same"})
	y := e.login(emulator.LoginRequest{AppID: miniB.AppID, OpenID: "same"})
	require.NotEqual(t, x.SessionKey, y.SessionKey)
	kA, _ := e.emu.SessionKey(miniA.AppID, "same")
	require.Equal(t, x.SessionKey, kA)

	// An unknown app is refused by the device API.
	bad := e.device(http.MethodPost, "/emulator/login", `{"appid":"wxNobody"}`)
	require.Equal(t, http.StatusBadRequest, bad.status)
	require.Equal(t, map[string]any{"code": "unknown_app", "message": bad.json["error"].(map[string]any)["message"]}, bad.json["error"])
}

func TestAccessTokensPerApp(t *testing.T) {
	e := newBrandEnv(t)
	miniA, miniB := brandApps[0], brandApps[1]
	fetch := func(app config.App) string {
		a := e.get(emulator.PathToken, url.Values{"grant_type": {"client_credential"}, "appid": {app.AppID}, "secret": {app.Secret}})
		require.NotEmpty(t, a.str("access_token"), "%s", a.raw)
		return a.str("access_token")
	}
	tokA, tokB := fetch(miniA), fetch(miniB)
	e.clk.Advance(emulator.TokenGrace + time.Second)
	devB := e.login(emulator.LoginRequest{AppID: miniB.AppID})
	requireOK(t, e.checkSession(tokB, devB.OpenID, devB.SessionKey))
	_ = fetch(miniA) // retires A's older tokens only
	e.clk.Advance(emulator.TokenGrace + time.Second)
	requireOK(t, e.checkSession(tokB, devB.OpenID, devB.SessionKey))
	devA := e.login(emulator.LoginRequest{AppID: miniA.AppID})
	requireErrcode(t, e.checkSession(tokA, devA.OpenID, devA.SessionKey), 40001, "invalid credential, access_token is invalid or not latest")
	requireErrcode(t, e.checkSession(tokB, devA.OpenID, devA.SessionKey), 87009, "invalid signature")

	// Stable tokens are per app too.
	sA := e.post(emulator.PathStableToken, nil, map[string]any{"grant_type": "client_credential", "appid": miniA.AppID, "secret": miniA.Secret}).str("access_token")
	sB := e.post(emulator.PathStableToken, nil, map[string]any{"grant_type": "client_credential", "appid": miniB.AppID, "secret": miniB.Secret}).str("access_token")
	require.NotEqual(t, sA, sB)

	// A phone code belongs to its app: another app's token cannot redeem it.
	phone, err := e.emu.Phone(emulator.PhoneRequest{AppID: miniA.AppID, OpenID: devA.OpenID, Phone: "13800000000"})
	require.NoError(t, err)
	requireErrcode(t, e.post(emulator.PathPhoneNumber, url.Values{"access_token": {sB}}, map[string]string{"code": phone.Code}), 40013, "invalid appid")
	got := e.post(emulator.PathPhoneNumber, url.Values{"access_token": {sA}}, map[string]string{"code": phone.Code})
	requireOK(t, got)
	require.Equal(t, miniA.AppID, got.json["phone_info"].(map[string]any)["watermark"].(map[string]any)["appid"])
}

func TestOpenDataIsTheAppsOwn(t *testing.T) {
	e := newBrandEnv(t)
	miniB := brandApps[1]
	dev := e.login(emulator.LoginRequest{AppID: miniB.AppID, OpenID: "o-b"})
	info, err := e.emu.UserInfo(emulator.UserInfoRequest{AppID: miniB.AppID, OpenID: "o-b", UnionID: "u-late", NickName: "小红"})
	require.NoError(t, err)
	plain, err := wxcrypto.DecryptUserInfo(dev.SessionKey, info.EncryptedData, info.IV, miniB.AppID)
	require.NoError(t, err, "encrypted under that app's session key, watermarked with its appid")
	require.Equal(t, "u-late", plain.UnionID, "a unionid may first arrive in the user info")
	phone, err := e.emu.Phone(emulator.PhoneRequest{AppID: miniB.AppID, OpenID: "o-b", Phone: "13900000000"})
	require.NoError(t, err)
	_, err = wxcrypto.DecryptPhone(dev.SessionKey, phone.EncryptedData, phone.IV, miniB.AppID)
	require.NoError(t, err)
	_, err = e.emu.UserInfo(emulator.UserInfoRequest{AppID: brandApps[0].AppID, OpenID: "o-b"})
	require.ErrorContains(t, err, "unknown_openid", "the user is B's, not A's")
	_, err = e.emu.UserInfo(emulator.UserInfoRequest{AppID: brandApps[2].AppID, OpenID: "o-b"})
	require.ErrorContains(t, err, "mini programs", "OAuth apps have no open data")
}

func TestOAuthLogin(t *testing.T) {
	e := newBrandEnv(t)
	page := brandApps[2]
	dev := e.login(emulator.LoginRequest{AppID: page.AppID, OpenID: "o-h5", UnionID: "u-person", Nickname: "小明", AvatarURL: "https://thirdwx.qlogo.cn/mmopen/x/132"})
	require.Empty(t, dev.SessionKey, "OAuth apps have no session key")
	raw := e.device(http.MethodPost, "/emulator/login", `{"appid":"`+page.AppID+`"}`)
	_, has := raw.json["session_key"]
	require.False(t, has)

	tok := e.exchange(page, dev.Code)
	requireWire(t, tok)
	require.Equal(t, "o-h5", tok.str("openid"))
	require.Equal(t, "u-person", tok.str("unionid"))
	require.Equal(t, "snsapi_userinfo", tok.str("scope"))
	require.Equal(t, 7200, tok.num("expires_in"))
	require.NotEmpty(t, tok.str("refresh_token"))
	requireErrcode(t, e.exchange(page, dev.Code), 40163, "code been used")

	info := e.get(emulator.PathOAuthUserInfo, url.Values{"access_token": {tok.str("access_token")}, "openid": {"o-h5"}, "lang": {"zh_CN"}})
	requireWire(t, info)
	require.Equal(t, "小明", info.str("nickname"))
	require.Equal(t, "https://thirdwx.qlogo.cn/mmopen/x/132", info.str("headimgurl"))
	require.Equal(t, "u-person", info.str("unionid"))
	require.Equal(t, 0, info.num("sex"), "WeChat no longer fills gender")
	requireErrcode(t, e.get(emulator.PathOAuthUserInfo, url.Values{"access_token": {tok.str("access_token")}, "openid": {"other"}}), 40003, "invalid openid")
	requireErrcode(t, e.get(emulator.PathOAuthUserInfo, url.Values{"access_token": {"86_unknown_token_value_xx"}, "openid": {"o-h5"}}), 40001, "invalid credential, access_token is invalid or not latest")

	// snsapi_base: openid only, no unionid, no profile.
	base := e.exchange(page, e.login(emulator.LoginRequest{AppID: page.AppID, OpenID: "o-base", UnionID: "u-b", Scope: "snsapi_base"}).Code)
	require.Equal(t, "snsapi_base", base.str("scope"))
	_, has = base.json["unionid"]
	require.False(t, has, "snsapi_base never yields a unionid")
	requireErrcode(t, e.get(emulator.PathOAuthUserInfo, url.Values{"access_token": {base.str("access_token")}, "openid": {"o-base"}}), 48001, "api unauthorized")

	// A snapshot page: a virtual user of its own.
	snap := e.exchange(page, e.login(emulator.LoginRequest{AppID: page.AppID, OpenID: "o-real", UnionID: "u-r", Snapshot: true}).Code)
	require.Equal(t, 1, snap.num("is_snapshotuser"))
	require.NotEqual(t, "o-real", snap.str("openid"))
	_, has = snap.json["unionid"]
	require.False(t, has)

	// Codes expire after five minutes.
	late := e.login(emulator.LoginRequest{AppID: page.AppID})
	e.clk.Advance(emulator.CodeTTL)
	requireErrcode(t, e.exchange(page, late.Code), 40029, "invalid code")

	// Device calls that mean nothing for OAuth apps are refused.
	for _, body := range []string{`{"appid":"` + page.AppID + `","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}`, `{"scope":"snsapi_base"}`, `{"appid":"` + page.AppID + `","scope":"all"}`} {
		a := e.device(http.MethodPost, "/emulator/login", body)
		require.Equal(t, http.StatusBadRequest, a.status, body)
	}
}
