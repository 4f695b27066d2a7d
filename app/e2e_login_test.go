package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	entidentity "github.com/wxlogin/wxlogin/ent/identity"
	entuser "github.com/wxlogin/wxlogin/ent/user"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/database"
)

var strategies = []string{"jwt", "db", "redis"}

// TestLoginEndToEnd walks the whole flow of issue 2 for every strategy:
// login → me → patch → relogin → code reuse → logout → 401.
func TestLoginEndToEnd(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			s := boot(t, strategyVars(t, strategy))

			d, r := s.login("e2e-user")
			access := r.Str("access_token")
			s.remember(access, r.Str("refresh_token"), d.SessionKey)
			require.NotEmpty(t, access)
			require.Equal(t, "Bearer", r.Str("token_type"))
			require.InDelta(t, s.cfg.Token.TTL.Seconds(), r.Body["expires_in"], 2)
			require.NotEmpty(t, r.Str("refresh_token"))
			require.InDelta(t, s.cfg.Token.RefreshTTL.Seconds(), r.Body["refresh_expires_in"], 2)
			u := r.User()
			require.Equal(t, "e2e-user", u["openid"])
			require.NotContains(t, string(r.Raw), d.SessionKey, "session_key never leaves the server")
			require.NotContains(t, string(r.Raw), "session_key")
			userID := u["id"]

			me := s.call("GET", s.api+"/api/v1/me", access, nil)
			require.Equal(t, 200, me.Status)
			require.Equal(t, userID, me.Body["id"])
			require.NotContains(t, string(me.Raw), d.SessionKey)

			patched := s.call("PATCH", s.api+"/api/v1/me", access, map[string]string{"nickname": "小明", "avatar_url": "https://example.com/a.png"})
			require.Equal(t, 200, patched.Status, "%s", patched.Raw)
			require.Equal(t, "小明", patched.Body["nickname"])
			require.Equal(t, "https://example.com/a.png", patched.Body["avatar_url"])

			bad := s.call("PATCH", s.api+"/api/v1/me", access, map[string]any{"nickname": 42})
			require.Equal(t, 400, bad.Status)
			bad = s.call("PATCH", s.api+"/api/v1/me", access, map[string]any{"avatar_url": "javascript:alert(1)"})
			require.Equal(t, 400, bad.Status)
			require.Equal(t, "invalid_avatar_url", bad.ErrorCode())

			// Relogin: same user, profile kept, the first session still works.
			d2, r2 := s.login("e2e-user")
			require.Equal(t, userID, r2.User()["id"])
			require.Equal(t, "小明", r2.User()["nickname"])
			access2 := r2.Str("access_token")
			s.remember(access2, r2.Str("refresh_token"), d2.SessionKey)
			require.NotEqual(t, access, access2)
			require.Equal(t, 200, s.call("GET", s.api+"/api/v1/me", access, nil).Status)

			// Reusing a code: 401 invalid_code, nothing created.
			reuse := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d2.Code})
			require.Equal(t, 401, reuse.Status)
			require.Equal(t, "invalid_code", reuse.ErrorCode())

			// The example business route sees the principal.
			g := s.call("GET", s.api+"/api/v1/example/greeting", access2, nil)
			require.Equal(t, 200, g.Status)
			require.Equal(t, userID, g.Body["user_id"])
			require.Equal(t, 401, s.call("GET", s.api+"/api/v1/example/greeting", "", nil).Status)

			// Logout ends this session only.
			out := s.call("POST", s.api+"/api/v1/auth/logout", access, nil)
			require.Equal(t, 204, out.Status)
			gone := s.call("GET", s.api+"/api/v1/me", access, nil)
			require.Equal(t, 401, gone.Status)
			require.Equal(t, "unauthenticated", gone.ErrorCode())
			require.Equal(t, 200, s.call("GET", s.api+"/api/v1/me", access2, nil).Status, "other sessions keep working")
		})
	}
}

// TestBadInput: bad requests get a JSON error with the right status, never a 500.
func TestBadInput(t *testing.T) {
	s := boot(t, nil)
	_, r := s.login("bad-input-user")
	access := r.Str("access_token")

	cases := []struct {
		name, method, path, bearer string
		body                       any
		status                     int
		code                       string
	}{
		{"missing code", "POST", "/api/v1/auth/login", "", map[string]any{}, 400, "missing_code"},
		{"empty code", "POST", "/api/v1/auth/login", "", map[string]any{"code": ""}, 400, "missing_code"},
		{"code of wrong type", "POST", "/api/v1/auth/login", "", map[string]any{"code": 12}, 400, "invalid_json"},
		{"malformed JSON", "POST", "/api/v1/auth/login", "", `{"code":`, 400, "invalid_json"},
		{"empty body", "POST", "/api/v1/auth/login", "", "", 400, "invalid_json"},
		{"form body", "POST", "/api/v1/auth/login", "", "code=abc", 400, "invalid_json"},
		{"unknown code", "POST", "/api/v1/auth/login", "", map[string]any{"code": "0a1b2c3d4e5f"}, 401, "invalid_code"},
		{"binary code", "POST", "/api/v1/auth/login", "", map[string]any{"code": "a\u0000b"}, 401, "invalid_code"},
		{"huge code", "POST", "/api/v1/auth/login", "", map[string]any{"code": strings.Repeat("a", 5000)}, 401, "invalid_code"},
		{"no token", "GET", "/api/v1/me", "", nil, 401, "unauthenticated"},
		{"garbage token", "GET", "/api/v1/me", "garbage", nil, 401, "unauthenticated"},
		{"tampered token", "GET", "/api/v1/me", access[:len(access)-2] + "xx", nil, 401, "unauthenticated"},
		{"token with spaces", "GET", "/api/v1/me", "a b", nil, 401, "unauthenticated"},
		{"empty patch", "PATCH", "/api/v1/me", access, map[string]any{}, 400, "empty_update"},
		{"empty nickname", "PATCH", "/api/v1/me", access, map[string]any{"nickname": " "}, 400, "invalid_nickname"},
		{"missing refresh token", "POST", "/api/v1/auth/refresh", "", map[string]any{}, 400, "missing_refresh_token"},
		{"unknown refresh token", "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": "nope.nope"}, 401, "invalid_refresh_token"},
		{"unknown route", "GET", "/api/v1/nothing", "", nil, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.call(c.method, s.api+c.path, c.bearer, c.body)
			require.Equal(t, c.status, r.Status, "%s", r.Raw)
			require.Equal(t, c.code, r.ErrorCode())
		})
	}

	// The token is never accepted from the query string.
	r2 := s.call("GET", s.api+"/api/v1/me?access_token="+access, "", nil)
	require.Equal(t, 401, r2.Status)
}

// TestConcurrentLoginsOneCode: clients retrying with one code get one
// WeChat call and one answer.
func TestConcurrentLoginsOneCode(t *testing.T) {
	s := boot(t, nil)
	d := s.wxLogin("retrying-user")
	before := s.emulatorCalls("/sns/jscode2session")
	const n = 10
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code})
		}()
	}
	wg.Wait()
	ok := 0
	for _, r := range replies {
		if r.Status == 200 {
			ok++
		} else {
			require.Equal(t, "invalid_code", r.ErrorCode(), "late retries see a used code")
		}
	}
	require.GreaterOrEqual(t, ok, 1)
	require.LessOrEqual(t, s.emulatorCalls("/sns/jscode2session")-before, n-ok+1, "concurrent requests share one WeChat call")
}

// TestConcurrentFirstLogins: 30 first logins of one openid at once
// through the API leave exactly one user row, on every database server.
func TestConcurrentFirstLogins(t *testing.T) {
	for _, backend := range testutil.ServerBackends {
		t.Run(backend, func(t *testing.T) { concurrentFirstLogins(t, testutil.DatabaseConfig(t, backend)) })
	}
}

func concurrentFirstLogins(t *testing.T, db config.Database) {
	s := boot(t, map[string]string{"APP_DATABASE_DRIVER": db.Driver, "APP_DATABASE_DSN": db.DSN})
	const n = 30
	codes := make([]string, n)
	for i := range codes {
		codes[i] = s.wxLogin("first-timer").Code
	}
	ids := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": codes[i]})
			if r.Status == 200 {
				ids[i] = r.User()["id"]
			} else {
				ids[i] = fmt.Sprintf("status %d: %s", r.Status, r.Raw)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
	client, err := database.Open(db)
	require.NoError(t, err)
	defer client.Close()
	count, err := client.User.Query().Where(entuser.HasIdentitiesWith(entidentity.Openid("first-timer"))).Count(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, count)
}

// TestHealthAndReadiness: /readyz checks the database, and Redis when configured.
func TestHealthAndReadiness(t *testing.T) {
	s := boot(t, strategyVars(t, "redis"))
	h := s.call("GET", s.api+"/healthz", "", nil)
	require.Equal(t, 200, h.Status)
	r := s.call("GET", s.api+"/readyz", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, map[string]any{"database": "ok", "redis": "ok"}, r.Body["checks"])
}
