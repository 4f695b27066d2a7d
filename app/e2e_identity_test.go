package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Three apps of one brand on one Open Platform account: two mini programs
// and an Official Account H5 page.
const (
	miniA = "wxMiniA0000000001"
	miniB = "wxMiniB0000000002"
	pageH = "wxPageH0000000003"
)

var brandApps = `[
 {"appid":"` + miniA + `","secret":"secret-of-mini-A-0123456789abcdef","kind":"miniprogram"},
 {"appid":"` + miniB + `","secret":"secret-of-mini-B-0123456789abcdef"},
 {"platform":"wechat","appid":"` + pageH + `","secret":"secret-of-page-H-0123456789abcdef","kind":"oauth"}]`

// brandVars are a strategy's settings with the three apps.
func brandVars(t testing.TB, strategy string) map[string]string {
	v := strategyVars(t, strategy)
	v["APP_APPS"] = brandApps
	return v
}

// device logs a device in at the emulator: fields as in /emulator/login.
func (s *service) device(fields map[string]any) device {
	s.t.Helper()
	r := s.call("POST", s.emu+"/emulator/login", "", fields)
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	var d device
	require.NoError(s.t, json.Unmarshal(r.Raw, &d))
	return d
}

// loginVia logs a person in through an app: the device's login there, then
// ours. unionid empty plays an app whose code2Session gives none.
func (s *service) loginVia(appid, openid, unionid string) (device, reply) {
	s.t.Helper()
	fields := map[string]any{"appid": appid, "openid": openid}
	if unionid != "" {
		fields["unionid"] = unionid
	}
	d := s.device(fields)
	r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": appid})
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	s.remember(d.SessionKey, r.Str("access_token"), r.Str("refresh_token"))
	return d, r
}

func userID(r reply) int {
	id, _ := r.User()["id"].(float64)
	if id == 0 {
		f, _ := r.Body["id"].(float64)
		return int(f)
	}
	return int(id)
}

// identities lists "appid/openid" of a user object's identities.
func identities(u map[string]any) []string {
	var out []string
	list, _ := u["identities"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		out = append(out, m["appid"].(string)+"/"+m["openid"].(string))
	}
	return out
}

func TestOnePersonAcrossApps(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			s := boot(t, brandVars(t, strategy))

			// The login needs the app once there are several.
			d := s.device(map[string]any{"appid": miniA})
			r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code})
			require.Equal(t, 400, r.Status)
			require.Equal(t, "missing_appid", r.ErrorCode())
			r = s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": "wxNotServedHere"})
			require.Equal(t, 400, r.Status)
			require.Equal(t, "unknown_app", r.ErrorCode())
			r = s.call("POST", s.api+"/api/v1/auth/login", "", map[string]any{"code": d.Code, "appid": 7})
			require.Equal(t, "invalid_json", r.ErrorCode())
			r = s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": miniB})
			require.Equal(t, 401, r.Status, "a code is only valid for the app it was made for")
			require.Equal(t, "invalid_code", r.ErrorCode())

			_, a := s.loginVia(miniA, "o-A", "u-person")
			_, b := s.loginVia(miniB, "o-B", "u-person")
			_, h := s.loginVia(pageH, "o-H", "u-person")
			require.Equal(t, userID(a), userID(b), "one user per person")
			require.Equal(t, userID(a), userID(h))
			require.Equal(t, []string{miniA + "/o-A", miniB + "/o-B", pageH + "/o-H"}, identities(h.User()))
			require.Equal(t, "o-H", h.User()["openid"], "the user seen through the identity used")
			require.NotContains(t, string(h.Raw), "session_key")
			first := h.User()["identities"].([]any)[0].(map[string]any)
			require.Equal(t, map[string]any{"provider": "wechat", "kind": "miniprogram", "appid": miniA, "openid": "o-A", "unionid": "u-person"}, first)

			// A token issued for app A keeps working while the person logs in through B.
			tokA := a.Str("access_token")
			s.loginVia(miniB, "o-B", "u-person")
			me := s.call("GET", s.api+"/api/v1/me", tokA, nil)
			require.Equal(t, 200, me.Status, "%s", me.Raw)
			require.Equal(t, "o-A", me.Body["openid"])
			require.Len(t, me.Body["identities"], 3)
		})
	}
}

func TestLateUnionIDMergesTwoUsers(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			s := boot(t, brandVars(t, strategy))
			_, older := s.loginVia(miniA, "o-A", "u-late")
			_, younger := s.loginVia(miniB, "o-B", "") // B bound to the Open Platform later
			require.NotEqual(t, userID(older), userID(younger))
			tokYoung, refreshYoung := younger.Str("access_token"), younger.Str("refresh_token")
			require.Equal(t, 200, s.call("PATCH", s.api+"/api/v1/me", tokYoung, map[string]string{"nickname": "小B"}).Status)

			_, merged := s.loginVia(miniB, "o-B", "u-late")
			require.Equal(t, userID(older), userID(merged), "the login answers with the surviving (older) user")
			require.Equal(t, []string{miniA + "/o-A", miniB + "/o-B"}, identities(merged.User()))
			require.Equal(t, "小B", merged.User()["nickname"], "an empty field of the survivor takes the absorbed user's value")
			for _, k := range []string{"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in", "user"} {
				require.Contains(t, merged.Body, k, "the same answer as a normal login")
			}

			testutil.Eventually(t, time.Second, func() bool {
				return s.call("GET", s.api+"/api/v1/me", tokYoung, nil).Status == 401
			}, "the absorbed user's token is refused within a second")
			require.Equal(t, 401, s.call("GET", s.api+"/api/v1/example/greeting", tokYoung, nil).Status)
			rr := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": refreshYoung})
			require.Equal(t, 401, rr.Status, "its refresh token too")
			require.Equal(t, 200, s.call("GET", s.api+"/api/v1/me", older.Str("access_token"), nil).Status, "the survivor's token goes on")
			require.Equal(t, 200, s.call("GET", s.api+"/api/v1/me", merged.Str("access_token"), nil).Status)
		})
	}
}

func TestLateUnionIDFromUserInfo(t *testing.T) {
	s := boot(t, brandVars(t, "jwt"))
	_, older := s.loginVia(miniA, "o-A", "u-info")
	dB, younger := s.loginVia(miniB, "o-B", "")
	info := s.deviceData("/emulator/userinfo", map[string]any{"appid": miniB, "openid": dB.OpenID, "unionid": "u-info", "nickname": "小红"})
	got := s.call("POST", s.api+"/api/v1/me/userinfo", younger.Str("access_token"),
		map[string]string{"encrypted_data": info["encrypted_data"], "iv": info["iv"]})
	require.Equal(t, 200, got.Status, "%s", got.Raw)
	require.Equal(t, float64(userID(older)), got.Body["id"], "the answer is the surviving user")
	require.Equal(t, "小红", got.Body["nickname"])
	require.Equal(t, "u-info", got.Body["unionid"])
	testutil.Eventually(t, time.Second, func() bool {
		return s.call("GET", s.api+"/api/v1/me", younger.Str("access_token"), nil).Status == 401
	}, "the caller's token belonged to the absorbed user: it ends, and the next login finds the survivor")
	_, again := s.loginVia(miniB, "o-B", "")
	require.Equal(t, userID(older), userID(again))
}

func TestOpenDataUsesTheIdentitysOwnSessionKey(t *testing.T) {
	s := boot(t, brandVars(t, "jwt"))
	dA, a := s.loginVia(miniA, "o-A", "u-keys")
	dB, b := s.loginVia(miniB, "o-B", "u-keys")
	require.Equal(t, userID(a), userID(b))
	require.NotEqual(t, dA.SessionKey, dB.SessionKey)

	phoneB := s.deviceData("/emulator/phone", map[string]any{"appid": miniB, "openid": dB.OpenID, "phone": "13900000002"})
	legacy := map[string]string{"encrypted_data": phoneB["encrypted_data"], "iv": phoneB["iv"]}
	withA := s.call("POST", s.api+"/api/v1/me/phone", a.Str("access_token"), legacy)
	require.Contains(t, []int{403, 409}, withA.Status, "app A's session key cannot read app B's data: %s", withA.Raw)

	// A new wx.login through A changes A's key only: B's data still decrypts with B's.
	s.loginVia(miniA, "o-A", "u-keys")
	got := s.call("POST", s.api+"/api/v1/me/phone", b.Str("access_token"), legacy)
	require.Equal(t, 200, got.Status, "%s", got.Raw)
	require.Equal(t, "13900000002", got.Body["phone"])
	require.Equal(t, "o-B", got.Body["openid"])

	// A phone code belongs to its app too.
	code := s.deviceData("/emulator/phone", map[string]any{"appid": miniB, "openid": dB.OpenID, "phone": "13900000003"})["code"]
	wrong := s.call("POST", s.api+"/api/v1/me/phone", a.Str("access_token"), map[string]string{"code": code})
	require.Equal(t, 401, wrong.Status, "%s", wrong.Raw)
	require.Equal(t, "invalid_code", wrong.ErrorCode())
	right := s.call("POST", s.api+"/api/v1/me/phone", b.Str("access_token"), map[string]string{"code": code})
	require.Equal(t, 200, right.Status, "%s", right.Raw)
}

func TestOAuthAppLogin(t *testing.T) {
	s := boot(t, brandVars(t, "jwt"))
	d := s.device(map[string]any{"appid": pageH, "openid": "o-page", "unionid": "u-page", "nickname": "小明", "avatar_url": "https://thirdwx.qlogo.cn/mmopen/p/132"})
	require.Empty(t, d.SessionKey, "OAuth apps have no session key")
	r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": pageH})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "小明", r.User()["nickname"], "the profile the user allowed fills the new user")
	require.Equal(t, "https://thirdwx.qlogo.cn/mmopen/p/132", r.User()["avatar_url"])
	require.Equal(t, "oauth", r.User()["identities"].([]any)[0].(map[string]any)["kind"])
	tok := r.Str("access_token")

	nope := s.call("POST", s.api+"/api/v1/me/phone", tok, map[string]string{"code": "abc"})
	require.Equal(t, 400, nope.Status)
	require.Equal(t, "not_supported", nope.ErrorCode())
	nope = s.call("POST", s.api+"/api/v1/me/userinfo", tok, map[string]string{"encrypted_data": "aGVsbG8gd29ybGQhISEhISEhIQ==", "iv": "aGVsbG8gd29ybGQhISEhIQ=="})
	require.Equal(t, "not_supported", nope.ErrorCode())

	snap := s.device(map[string]any{"appid": pageH, "openid": "o-real", "snapshot": true})
	refused := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": snap.Code, "appid": pageH})
	require.Equal(t, 403, refused.Status)
	require.Equal(t, "login_refused", refused.ErrorCode(), "no account for a snapshot-page virtual user")
}

func TestMergeHookFailureLeavesNothingHalfDone(t *testing.T) {
	cfg := testutil.Config(t, merged(brandVars(t, "jwt"), map[string]string{
		"APP_HTTP_ADDR": freeAddr(t), "APP_WECHAT_EMULATOR_ADDR": freeAddr(t),
		"APP_TOKEN_SECRET": strings.Repeat("merge-hook-secret-", 3),
	}))
	s := bootConfig(t, cfg, fx.Provide(user.AsMergeHook(func(context.Context, *ent.Tx, int, int) error {
		return errors.New("the orders service is down")
	})))
	_, older := s.loginVia(miniA, "o-A", "u-fail")
	dB, younger := s.loginVia(miniB, "o-B", "")

	d := s.device(map[string]any{"appid": miniB, "openid": dB.OpenID, "unionid": "u-fail"})
	r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": miniB})
	require.Equal(t, 503, r.Status, "%s", r.Raw)
	require.Equal(t, "merge_failed", r.ErrorCode())
	for _, tok := range []string{older.Str("access_token"), younger.Str("access_token")} {
		me := s.call("GET", s.api+"/api/v1/me", tok, nil)
		require.Equal(t, 200, me.Status, "both users are as they were")
		require.Len(t, me.Body["identities"], 1)
	}
	require.Len(t, s.logs.FilterMessage("users merged: one person, the older user survives").All(), 0)
}

func TestMergeOff(t *testing.T) {
	vars := brandVars(t, "db")
	vars["APP_IDENTITY_MERGE"] = "off"
	s := boot(t, vars)
	_, older := s.loginVia(miniA, "o-A", "u-off")
	_, younger := s.loginVia(miniB, "o-B", "")
	_, again := s.loginVia(miniB, "o-B", "u-off")
	require.Equal(t, userID(younger), userID(again), "the conflicting identity keeps its user")
	require.NotEqual(t, userID(older), userID(again))
	require.Equal(t, "u-off", again.User()["unionid"], "the unionid is recorded on it")
	require.Equal(t, 200, s.call("GET", s.api+"/api/v1/me", younger.Str("access_token"), nil).Status, "nobody is logged out")
	require.NotEmpty(t, s.logs.FilterMessageSnippet("merging is off").All(), "with a warning")
}

// TestMergeRevokesOnEveryInstance: a merge made on one instance ends the
// absorbed user's tokens on the others within a second.
func TestMergeRevokesOnEveryInstance(t *testing.T) {
	for _, withRedis := range []bool{true, false} {
		name := "with-redis"
		if !withRedis {
			name = "without-redis"
		}
		t.Run(name, func(t *testing.T) {
			db := testutil.MariaDBConfig(t)
			vars := map[string]string{
				"APP_APPS": brandApps, "APP_DATABASE_DRIVER": db.Driver, "APP_DATABASE_DSN": db.DSN,
				"APP_TOKEN_SECRET": strings.Repeat("fleet-shared-secret-", 3),
			}
			if withRedis {
				r := testutil.RedisConfig(t)
				vars["APP_REDIS_ADDR"], vars["APP_REDIS_PREFIX"] = r.Addr, r.Prefix
			}
			a := boot(t, vars)
			b := boot(t, merged(vars, map[string]string{"APP_WECHAT_EMULATOR": "false", "APP_WECHAT_BASEURL": a.emu}))
			b.emu = a.emu
			_, older := a.loginVia(miniA, "o-A", "u-fleet")
			_, younger := a.loginVia(miniB, "o-B", "")
			tok := younger.Str("access_token")
			require.Equal(t, 200, b.call("GET", b.api+"/api/v1/me", tok, nil).Status, "cached on B")
			_, m := a.loginVia(miniB, "o-B", "u-fleet")
			require.Equal(t, userID(older), userID(m))
			testutil.Eventually(t, time.Second, func() bool {
				return b.call("GET", b.api+"/api/v1/me", tok, nil).Status == 401
			}, "B refuses the absorbed user's token within a second")
		})
	}
}

func merged(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
