package admin_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/admin"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

var secret = strings.Repeat("operator-token-", 3)

func serve(t *testing.T, cfg config.Admin) (*fiber.App, *observer.ObservedLogs, *user.EntStore) {
	core, logs := observer.New(zap.InfoLevel)
	users := user.NewEntStore(testutil.SQLite(t))
	strategy, err := token.NewDB(testutil.SQLite(t), token.Options{Config: config.Token{Secret: strings.Repeat("s", 32),
		TTL: 3600e9, RefreshTTL: 7200e9}, Feed: token.NewLocalFeed()})
	require.NoError(t, err)
	app := fiber.New(fiber.Config{ErrorHandler: httpserver.ErrorHandler(zap.NewNop())})
	admin.New(admin.Params{Config: cfg, Users: users, Strategy: strategy, Logger: zap.New(core)}).Register(app)
	return app, logs, users
}

func get(t *testing.T, app *fiber.App, path, auth string) (int, string) {
	req := httptest.NewRequest("GET", path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := app.Test(req, -1)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNoTokenNoRoutes(t *testing.T) {
	app, logs, _ := serve(t, config.Admin{})
	status, _ := get(t, app, "/admin/v1/users/1", "Bearer "+secret)
	require.Equal(t, 404, status)
	require.Zero(t, logs.Len(), "nothing there, nothing audited")
}

func TestTokenAndAudit(t *testing.T) {
	app, logs, users := serve(t, config.Admin{Token: secret})
	r, err := users.Login(t.Context(), user.LoginInput{Provider: "wechat", AppID: "wxA", OpenID: "o-1"})
	require.NoError(t, err)
	path := fmt.Sprintf("/admin/v1/users/%d", r.User.ID)
	for _, auth := range []string{"", "Bearer", "Bearer " + secret[1:], "Basic " + secret, "Bearer " + secret + "x"} {
		status, body := get(t, app, path, auth)
		require.Equal(t, 401, status, auth)
		require.Contains(t, body, `"unauthenticated"`)
	}
	status, body := get(t, app, path, "bearer "+secret)
	require.Equal(t, 200, status, body)
	require.Contains(t, body, `"openid":"o-1"`)
	require.Contains(t, body, `"status":"active"`)

	all := logs.FilterMessage("admin call").All()
	require.Len(t, all, 6, "every call, refused ones too")
	last := all[5].ContextMap()
	require.Equal(t, "admin", last["who"])
	require.Equal(t, "get_user", last["what"])
	require.EqualValues(t, r.User.ID, last["user_id"])
	require.EqualValues(t, 200, last["status"])
	require.Equal(t, "unauthenticated", all[0].ContextMap()["who"])
	for _, e := range all {
		require.NotContains(t, fmt.Sprint(e.ContextMap()), secret[:20])
	}
}
