package httpserver_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// TestTokenErrors: a refused token says why in "reason"; a token store
// that does not answer is a 503 with Retry-After, never a 401.
func TestTokenErrors(t *testing.T) {
	app, _ := newApp(t)
	errs := map[string]error{
		"expired":     token.Unauthenticated(token.ReasonExpired, "detail"),
		"banned":      fmt.Errorf("wrapped: %w", token.Unauthenticated(token.ReasonUserBanned, "detail")),
		"bare":        token.ErrUnauthenticated,
		"refresh":     token.InvalidRefresh(token.ReasonLoggedOut, "detail"),
		"refreshbare": token.ErrInvalidRefresh,
		"reused":      token.ErrRefreshReused,
		"session":     token.ErrSessionNotFound,
		"down":        fmt.Errorf("token: look the access token up: %w", errors.Join(token.ErrUnavailable, errors.New("dial tcp: refused"))),
		"userdeleted": user.ErrNotFound,
	}
	for name, err := range errs {
		app.Get("/token/"+name, func(*fiber.Ctx) error { return err })
	}
	cases := []struct {
		name, code, reason string
		status             int
	}{
		{"expired", "unauthenticated", "expired", 401},
		{"banned", "unauthenticated", "user_banned", 401},
		{"bare", "unauthenticated", "invalid", 401},
		{"refresh", "invalid_refresh_token", "logged_out", 401},
		{"refreshbare", "invalid_refresh_token", "", 401},
		{"reused", "refresh_token_reused", "", 401},
		{"session", "not_found", "", 404},
		{"down", "service_unavailable", "", 503},
		{"userdeleted", "unauthenticated", "user_deleted", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, header := do(t, app, httptest.NewRequest("GET", "/token/"+c.name, nil))
			require.Equal(t, c.status, status)
			require.Equal(t, c.code, body.Error.Code)
			require.Equal(t, c.reason, body.Error.Reason)
			if status == 503 {
				require.Equal(t, "1", header.Get("Retry-After"))
			}
			if status == 401 {
				require.Equal(t, `Bearer realm="wxlogin"`, header.Get("WWW-Authenticate"))
			}
		})
	}
}
