package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
)

// TestEmulatorCommandRefusedInProduction: `app emulator` accepts any
// device, so it does not start in production.
func TestEmulatorCommandRefusedInProduction(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	for k, v := range map[string]string{
		"APP_ENV": "production", "APP_CONFIG": empty, "APP_DATA_DIR": t.TempDir(),
		"APP_WECHAT_APPID": "wxprod", "APP_WECHAT_SECRET": "prod-secret", "APP_TOKEN_SECRET": strings.Repeat("p", 40),
		"APP_WECHAT_EMULATOR_ADDR": freeAddr(t),
	} {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"emulator"}, &out, &errOut))
	require.Contains(t, errOut.String(), "refused in production")
	require.NotContains(t, errOut.String(), "prod-secret")
}

// TestAudienceSeparatesServices: two services that share their signing
// keys but not their audience refuse each other's tokens.
func TestAudienceSeparatesServices(t *testing.T) {
	key, err := config.NewJWTKey("shared-1")
	require.NoError(t, err)
	common := map[string]string{"APP_TOKEN_JWT_ALG": "EdDSA", "APP_TOKEN_JWT_KEYS": key, "APP_TOKEN_ISSUER": "brand-login"}
	withAud := func(aud string) map[string]string {
		m := map[string]string{"APP_TOKEN_AUDIENCE": aud}
		for k, v := range common {
			m[k] = v
		}
		return m
	}
	shop := boot(t, withAud("shop"))
	games := boot(t, withAud("games"))
	_, r := shop.login("aud-user")
	access := r.Str("access_token")
	shop.remember(access)
	require.Equal(t, 200, shop.call("GET", shop.api+"/api/v1/example/greeting", access, nil).Status)
	refused := games.call("GET", games.api+"/api/v1/example/greeting", access, nil)
	require.Equal(t, 401, refused.Status, "%s", refused.Raw)
	require.Equal(t, "invalid", refused.ErrorReason())
}

// TestAnswersHeadersAndParseErrors: API answers are never cached and never
// sniffed; a request the HTTP parser refuses is answered with a fixed
// message that does not quote it; nicknames are visible text.
func TestAnswersHeadersAndParseErrors(t *testing.T) {
	s := boot(t, nil)
	_, r := s.login("headers-user")
	access := r.Str("access_token")
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"), "a login answer holds tokens")
	require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))
	for _, a := range []reply{
		s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": r.Str("refresh_token")}),
		s.call("GET", s.api+"/api/v1/me", access, nil),
		s.call("PATCH", s.api+"/api/v1/me", access, map[string]string{"nickname": "小明"}),
		s.call("GET", s.api+"/api/v1/me", "", nil),
		s.call("GET", s.api+"/api/v1/nothing-here", "", nil),
	} {
		require.Equal(t, "no-store", a.Header.Get("Cache-Control"))
		require.Equal(t, "nosniff", a.Header.Get("X-Content-Type-Options"))
	}

	for _, nick := range []string{"\u202eevil", "\u200b", "\u3164"} {
		bad := s.call("PATCH", s.api+"/api/v1/me", access, map[string]string{"nickname": nick})
		require.Equal(t, 400, bad.Status, "%q", nick)
		require.Equal(t, "invalid_nickname", bad.ErrorCode())
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(s.api, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Write([]byte("GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + access + "\r\nbroken header line\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode)
	require.JSONEq(t, `{"error":{"code":"bad_request","message":"the request is malformed"}}`, string(body))
	require.NotContains(t, string(body), access)
}
