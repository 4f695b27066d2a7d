package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// One app per platform; the Alipay app runs on the development key pairs.
const (
	wxApp     = "wxMiniA0000000001"
	qqApp     = "1101000000"
	douyinApp = "tt0000000000000001"
	alipayApp = "2021000000000001"
)

var platformApps = `[
 {"appid":"` + wxApp + `","secret":"secret-of-mini-A-0123456789abcdef"},
 {"platform":"qq","appid":"` + qqApp + `","secret":"qq-secret-0123456789"},
 {"platform":"douyin","appid":"` + douyinApp + `","secret":"douyin-secret-0123456789"},
 {"platform":"alipay","appid":"` + alipayApp + `"}]`

var appOf = map[string]string{"wechat": wxApp, "qq": qqApp, "douyin": douyinApp, "alipay": alipayApp}

// platformDevice is what a platform's login call gives a device.
type platformDevice struct {
	Code            string `json:"code"`
	AnonymousCode   string `json:"anonymous_code"`
	OpenID          string `json:"openid"`
	AnonymousOpenID string `json:"anonymous_openid"`
	SessionKey      string `json:"session_key"`
	Device          string `json:"device"`
}

// deviceOn logs a device in at a platform's emulator.
func (s *service) deviceOn(platform string, fields map[string]any) platformDevice {
	s.t.Helper()
	if fields == nil {
		fields = map[string]any{}
	}
	fields["appid"] = appOf[platform]
	path := "/emulator/" + platform + "/login"
	r := s.call("POST", s.emu+path, "", fields)
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	var d platformDevice
	require.NoError(s.t, json.Unmarshal(r.Raw, &d))
	s.remember(d.SessionKey)
	return d
}

// loginOn logs a person in through a platform's app.
func (s *service) loginOn(platform, openid, unionid string) reply {
	s.t.Helper()
	fields := map[string]any{"openid": openid}
	if unionid != "" {
		fields["unionid"] = unionid
	}
	d := s.deviceOn(platform, fields)
	r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": appOf[platform]})
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	s.remember(r.Str("access_token"), r.Str("refresh_token"))
	return r
}

func providersOf(u map[string]any) []string {
	var out []string
	for _, x := range u["identities"].([]any) {
		out = append(out, x.(map[string]any)["provider"].(string))
	}
	return out
}

func TestOnePersonOnFourPlatforms(t *testing.T) {
	s := boot(t, map[string]string{"APP_APPS": platformApps})

	// The same unionid string on two platforms links nothing: two users.
	w := s.loginOn("wechat", "o-person-w", "u-same-string")
	q := s.loginOn("qq", "o-person-q", "u-same-string")
	require.NotEqual(t, userID(w), userID(q), "a unionid is platform-scoped")
	require.Equal(t, []string{"qq"}, providersOf(q.User()))

	// Binding: the person attaches their accounts on the other platforms.
	tok := w.Str("access_token")
	bind := func(platform, openid string) reply {
		d := s.deviceOn(platform, map[string]any{"openid": openid})
		return s.call("POST", s.api+"/api/v1/me/identities", tok, map[string]string{"appid": appOf[platform], "code": d.Code})
	}
	taken := bind("qq", "o-person-q")
	require.Equal(t, 409, taken.Status, "%s", taken.Raw)
	require.Equal(t, "identity_taken", taken.ErrorCode(), "another user's account is never merged silently")
	for _, p := range []string{"qq", "douyin", "alipay"} {
		r := bind(p, "o-bound-"+p)
		require.Equal(t, 200, r.Status, "%s: %s", p, r.Raw)
	}
	me := s.call("GET", s.api+"/api/v1/me", tok, nil)
	require.Equal(t, []string{"wechat", "qq", "douyin", "alipay"}, providersOf(me.Body), "one user, four identities")
	for _, p := range []string{"qq", "douyin", "alipay"} {
		r := s.loginOn(p, "o-bound-"+p, "")
		require.Equal(t, userID(w), userID(r), "logging in through a bound account is the same user (%s)", p)
	}

	// Bad binds.
	r := s.call("POST", s.api+"/api/v1/me/identities", tok, map[string]string{"code": "x"})
	require.Equal(t, "missing_appid", r.ErrorCode())
	r = s.call("POST", s.api+"/api/v1/me/identities", tok, map[string]string{"appid": "nope", "code": "x"})
	require.Equal(t, "unknown_app", r.ErrorCode())
	r = s.call("POST", s.api+"/api/v1/me/identities", "", map[string]string{"appid": qqApp, "code": "x"})
	require.Equal(t, 401, r.Status)

	// Unbinding one app ends the sessions logged in through it; the last account stays.
	viaAlipay := s.loginOn("alipay", "o-bound-alipay", "")
	require.Equal(t, 204, s.call("DELETE", s.api+"/api/v1/me/identities/alipay/"+alipayApp, tok, nil).Status)
	testutil.Eventually(t, time.Second, func() bool {
		return s.call("GET", s.api+"/api/v1/me", viaAlipay.Str("access_token"), nil).Status == 401
	}, "the session logged in through the unbound app ends")
	require.Equal(t, 200, s.call("GET", s.api+"/api/v1/me", tok, nil).Status, "the others go on")
	require.Equal(t, 404, s.call("DELETE", s.api+"/api/v1/me/identities/alipay/"+alipayApp, tok, nil).Status)
	lone := s.loginOn("qq", "o-lonely", "")
	last := s.call("DELETE", s.api+"/api/v1/me/identities/qq/"+qqApp, lone.Str("access_token"), nil)
	require.Equal(t, 409, last.Status)
	require.Equal(t, "last_identity", last.ErrorCode())
}

func TestDouyinAnonymousThenReal(t *testing.T) {
	s := boot(t, map[string]string{"APP_APPS": platformApps})
	login := func(d platformDevice, withCode bool) reply {
		body := map[string]string{"appid": douyinApp, "anonymous_code": d.AnonymousCode}
		if withCode {
			body["code"] = d.Code
		}
		r := s.call("POST", s.api+"/api/v1/auth/login", "", body)
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		return r
	}

	// A device not logged in to Douyin: only the anonymous code.
	anon := s.deviceOn("douyin", map[string]any{"device": "phone-1", "anonymous": true})
	require.Empty(t, anon.Code)
	a := login(anon, false)
	require.Equal(t, "anonymous", a.User()["identities"].([]any)[0].(map[string]any)["kind"])
	// The same device, now logged in: a new real identity joins that user.
	real := s.deviceOn("douyin", map[string]any{"device": "phone-1", "openid": "o-dy-real"})
	r := login(real, true)
	require.Equal(t, userID(a), userID(r), "nothing lost: the same user id")
	require.Len(t, r.User()["identities"], 2)
	require.Equal(t, "o-dy-real", r.User()["openid"])

	// Another device's anonymous user is absorbed by a real identity that already has a user.
	other := login(s.deviceOn("douyin", map[string]any{"device": "phone-2", "anonymous": true}), false)
	require.NotEqual(t, userID(a), userID(other))
	again := login(s.deviceOn("douyin", map[string]any{"device": "phone-2", "openid": "o-dy-real"}), true)
	require.Equal(t, userID(a), userID(again), "the real user absorbs the anonymous one")
	testutil.Eventually(t, time.Second, func() bool {
		return s.call("GET", s.api+"/api/v1/me", other.Str("access_token"), nil).Status == 401
	}, "the absorbed anonymous user's token ends")

	// anonymous_code belongs to Douyin.
	bad := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"appid": qqApp, "code": "x", "anonymous_code": "y"})
	require.Equal(t, 400, bad.Status)
}

func TestPlatformPhoneNumbers(t *testing.T) {
	s := boot(t, map[string]string{"APP_APPS": platformApps})
	ali := s.loginOn("alipay", "o-ali-phone", "")
	res := s.call("POST", s.emu+"/emulator/alipay/phone", "", map[string]any{"appid": alipayApp, "phone": "13700000000"})
	require.Equal(t, 200, res.Status, "%s", res.Raw)
	got := s.call("POST", s.api+"/api/v1/me/phone", ali.Str("access_token"), map[string]string{"response": res.Str("response")})
	require.Equal(t, 200, got.Status, "%s", got.Raw)
	require.Equal(t, "13700000000", got.Body["phone"])
	forged := s.call("POST", s.api+"/api/v1/me/phone", ali.Str("access_token"), map[string]string{"response": `{"response":"AAAA","sign":"AAAA"}`})
	require.GreaterOrEqual(t, forged.Status, 400)
	require.Less(t, forged.Status, 500, "%s", forged.Raw)

	q := s.loginOn("qq", "o-qq-phone", "")
	r := s.call("POST", s.api+"/api/v1/me/phone", q.Str("access_token"), map[string]string{"code": "abc"})
	require.Equal(t, 400, r.Status)
	require.Equal(t, "not_supported", r.ErrorCode())

	dy := s.deviceOn("douyin", map[string]any{"openid": "o-dy-phone"})
	dr := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"appid": douyinApp, "code": dy.Code})
	require.Equal(t, 200, dr.Status, "%s", dr.Raw)
	ph := s.call("POST", s.emu+"/emulator/douyin/phone", "", map[string]any{"appid": douyinApp, "openid": "o-dy-phone", "phone": "13600000000"})
	require.Equal(t, 200, ph.Status, "%s", ph.Raw)
	got = s.call("POST", s.api+"/api/v1/me/phone", dr.Str("access_token"), map[string]string{"encrypted_data": ph.Str("encrypted_data"), "iv": ph.Str("iv")})
	require.Equal(t, 200, got.Status, "%s", got.Raw)
	require.Equal(t, "13600000000", got.Body["phone"])
}

// TestConcurrentLoginsPerPlatform: concurrent first logins of one account
// on each platform make exactly one user.
func TestConcurrentLoginsPerPlatform(t *testing.T) {
	db := testutil.MariaDBConfig(t)
	s := boot(t, map[string]string{"APP_APPS": platformApps, "APP_DATABASE_DRIVER": db.Driver, "APP_DATABASE_DSN": db.DSN})
	for platform := range appOf {
		t.Run(platform, func(t *testing.T) {
			const n = 12
			codes := make([]string, n)
			for i := range codes {
				codes[i] = s.deviceOn(platform, map[string]any{"openid": "o-concurrent-" + platform}).Code
			}
			ids := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": codes[i], "appid": appOf[platform]})
					ids[i] = fmt.Sprintf("%d %v", r.Status, r.User()["id"])
				})
			}
			wg.Wait()
			for _, id := range ids {
				require.Equal(t, ids[0], id)
			}
			require.Contains(t, ids[0], "200 ")
		})
	}
}
