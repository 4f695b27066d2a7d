package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
)

// TestWeChatFailuresReachClientsAsClearErrors injects WeChat's failures
// through the emulator and checks the answer a mini program gets.
func TestWeChatFailuresReachClientsAsClearErrors(t *testing.T) {
	s := boot(t, map[string]string{"APP_WECHAT_TIMEOUT": "500ms"})
	cases := []struct {
		name   string
		fault  map[string]any
		status int
		code   string
	}{
		{"invalid code", map[string]any{"errcode": 40029}, 401, "invalid_code"},
		{"code used", map[string]any{"errcode": 40163}, 401, "invalid_code"},
		{"rate limited", map[string]any{"errcode": 45011}, 429, "rate_limited"},
		{"high-risk user", map[string]any{"errcode": 40226}, 403, "user_blocked"},
		{"system busy", map[string]any{"errcode": -1}, 503, "wechat_unavailable"},
		{"bad gateway, empty html", map[string]any{"http_status": 502}, 503, "wechat_unavailable"},
		{"timeout", map[string]any{"delay_ms": 2000}, 503, "wechat_unavailable"},
		{"wrong secret", map[string]any{"errcode": 40125}, 500, "wechat_misconfigured"},
		{"wrong appid", map[string]any{"errcode": 40013}, 500, "wechat_misconfigured"},
		{"ip not whitelisted", map[string]any{"errcode": 40164}, 500, "wechat_misconfigured"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := s.wxLogin("fault-user")
			fault := map[string]any{"path": "/sns/jscode2session", "count": 1}
			for k, v := range c.fault {
				fault[k] = v
			}
			require.Equal(t, 200, s.call("POST", s.emu+"/emulator/faults", "", fault).Status)
			r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code})
			require.Equal(t, c.status, r.Status, "%s", r.Raw)
			require.Equal(t, c.code, r.ErrorCode())
			require.NotContains(t, string(r.Raw), s.cfg.WeChat.Secret)

			// The fault is spent and the code was not: the retry logs in.
			if c.code != "wechat_unavailable" || c.fault["delay_ms"] == nil {
				ok := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code})
				require.Equal(t, 200, ok.Status, "%s", ok.Raw)
			}
		})
	}

	// An operator can act on a misconfiguration from the log line alone.
	var found bool
	for _, e := range s.logs.FilterLevelExact(zapcore.ErrorLevel).All() {
		if strings.Contains(e.Message, "APP_WECHAT_SECRET") {
			found = true
			require.Contains(t, e.ContextMap()["error"], "rid:", "WeChat's request id is kept for support")
		}
	}
	require.True(t, found, "a misconfiguration is logged with what to check")
}

// TestAccessTokenRejectedOnceIsRetried: when WeChat refuses the access
// token (40001: another instance fetched a new one), the phone call
// re-reads the shared token and retries once, invisibly to the client.
func TestAccessTokenRejectedOnceIsRetried(t *testing.T) {
	s := boot(t, nil)
	d, r := s.login("retry-user")
	access := r.Str("access_token")
	phone := func() reply {
		ph := s.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13600000000"})
		return s.call("POST", s.api+"/api/v1/me/phone", access, map[string]string{"code": ph["code"]})
	}
	require.Equal(t, 200, phone().Status)

	fault := map[string]any{"path": "/wxa/business/getuserphonenumber", "errcode": 40001, "count": 1}
	require.Equal(t, 200, s.call("POST", s.emu+"/emulator/faults", "", fault).Status)
	before := s.emulatorCalls("/wxa/business/getuserphonenumber")
	got := phone()
	require.Equal(t, 200, got.Status, "%s", got.Raw)
	require.Equal(t, before+2, s.emulatorCalls("/wxa/business/getuserphonenumber"), "one retry")

	fault["count"] = 2
	require.Equal(t, 200, s.call("POST", s.emu+"/emulator/faults", "", fault).Status)
	got = phone()
	require.Equal(t, 503, got.Status, "only one retry: %s", got.Raw)
	require.Equal(t, "wechat_unavailable", got.ErrorCode())
}
