package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/token"
)

// fakeStrategy accepts exactly one token.
type fakeStrategy struct {
	token.Strategy
	valid string
	seen  []string
}

func (f *fakeStrategy) Verify(_ context.Context, tok string) (token.Principal, error) {
	f.seen = append(f.seen, tok)
	if tok != f.valid {
		return token.Principal{}, token.ErrUnauthenticated
	}
	return token.Principal{UserID: 7, AppID: "wxA", OpenID: "o-7", SessionID: "s1"}, nil
}

func newApp(s token.Strategy, next func(*fiber.Ctx) bool) *fiber.App {
	app := httpserver.NewApp(config.HTTP{}, zap.NewNop())
	app.Use("/private", auth.Middleware(auth.MiddlewareConfig{Strategy: s, Next: next}))
	app.Get("/private/whoami", func(c *fiber.Ctx) error {
		p, ok := auth.PrincipalOf(c)
		if !ok {
			return c.SendString("anonymous")
		}
		return c.JSON(p)
	})
	return app
}

func TestMiddleware(t *testing.T) {
	s := &fakeStrategy{valid: "good.token-value_1"}
	app := newApp(s, nil)
	cases := []struct {
		name, header string
		status       int
	}{
		{"valid", "Bearer good.token-value_1", 200},
		{"scheme is case-insensitive", "bearer good.token-value_1", 200},
		{"missing", "", 401},
		{"wrong scheme", "Basic good.token-value_1", 401},
		{"no token", "Bearer ", 401},
		{"token only", "good.token-value_1", 401},
		{"invalid characters", "Bearer good token", 401},
		{"unknown token", "Bearer other", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/private/whoami", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := app.Test(req, -1)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			require.Equal(t, c.status, resp.StatusCode, "%s", body)
			if c.status == 401 {
				var e struct {
					Error httpserver.Body `json:"error"`
				}
				require.NoError(t, json.Unmarshal(body, &e))
				require.Equal(t, "unauthenticated", e.Error.Code)
				require.Equal(t, `Bearer realm="wxlogin"`, resp.Header.Get("WWW-Authenticate"))
			} else {
				var p token.Principal
				require.NoError(t, json.Unmarshal(body, &p))
				require.Equal(t, 7, p.UserID)
				require.Equal(t, "o-7", p.OpenID)
			}
		})
	}
}

func TestMiddlewareIgnoresQueryString(t *testing.T) {
	s := &fakeStrategy{valid: "good"}
	app := newApp(s, nil)
	resp, err := app.Test(httptest.NewRequest("GET", "/private/whoami?access_token=good&token=good", nil), -1)
	require.NoError(t, err)
	require.Equal(t, 401, resp.StatusCode)
	require.Empty(t, s.seen, "the strategy never saw a token from the query")
}

func TestMiddlewareNextSkips(t *testing.T) {
	app := newApp(&fakeStrategy{valid: "good"}, func(c *fiber.Ctx) bool { return true })
	resp, err := app.Test(httptest.NewRequest("GET", "/private/whoami", nil), -1)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "anonymous", string(body))
}

func TestMiddlewareCopiesTheToken(t *testing.T) {
	s := &fakeStrategy{valid: "good"}
	app := newApp(s, nil)
	for range 3 {
		req := httptest.NewRequest("GET", "/private/whoami", nil)
		req.Header.Set("Authorization", "Bearer good")
		_, err := app.Test(req, -1)
		require.NoError(t, err)
		req = httptest.NewRequest("GET", "/private/whoami", nil)
		req.Header.Set("Authorization", "Bearer evil")
		_, err = app.Test(req, -1)
		require.NoError(t, err)
	}
	// Fiber reuses its buffers; a strategy that kept the string must still see what it got.
	require.Equal(t, []string{"good", "evil", "good", "evil", "good", "evil"}, s.seen)
}
