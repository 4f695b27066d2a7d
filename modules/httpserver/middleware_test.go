package httpserver_test

import (
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// seen is what a middleware of the group observed about one request.
type seen struct {
	route, code string
	status      int
	err         error
}

// TestMiddlewareSeesRouteTemplatesAndErrorCodes: the group's middleware runs
// in its declared order on matched and unmatched requests, and reads the
// route's template (never the raw path), the final status and the error
// code whatever middleware or handler answered.
func TestMiddlewareSeesRouteTemplatesAndErrorCodes(t *testing.T) {
	var mu sync.Mutex
	var order []string
	var last seen
	observe := func(name string, at int) httpserver.Middleware {
		return httpserver.Middleware{Name: name, Order: at, Handler: func(c *fiber.Ctx) error {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			httpserver.RenderError(c, c.Next())
			mu.Lock()
			last = seen{route: httpserver.RouteOf(c), code: httpserver.ErrorCode(c), status: c.Response().StatusCode(), err: httpserver.ErrorOf(c)}
			mu.Unlock()
			return nil
		}}
	}
	refuse := func(c *fiber.Ctx) error {
		if c.Get("Authorization") == "" {
			return httpserver.NewError(fiber.StatusUnauthorized, "unauthenticated", "no token")
		}
		return c.Next()
	}
	var srv *httpserver.Server
	app := fxtest.New(t,
		fx.Supply(config.HTTP{Addr: "127.0.0.1:0"}, zap.NewNop()),
		httpserver.Module,
		fx.Provide(
			httpserver.AsMiddleware(func() httpserver.Middleware { return observe("second", 20) }),
			httpserver.AsMiddleware(func() httpserver.Middleware { return observe("first", 10) }),
			httpserver.AsRoute(func() httpserver.Route {
				return httpserver.RouteFunc(func(app *fiber.App) {
					app.Get("/items/:id", func(c *fiber.Ctx) error { return c.SendString(c.Params("id")) })
					app.Delete("/items/:id", refuse, func(c *fiber.Ctx) error { return c.SendStatus(204) })
					grp := app.Group("/grp", refuse)
					grp.Get("/thing", func(c *fiber.Ctx) error { return c.SendString("ok") })
					app.Get("/files/*", func(c *fiber.Ctx) error { return c.SendString("file") })
				})
			}),
		),
		fx.Populate(&srv),
		fx.NopLogger,
	)
	app.RequireStart()
	defer app.RequireStop()

	for _, tc := range []struct {
		method, path string
		want         seen
	}{
		{"GET", "/items/42", seen{route: "/items/:id", status: 200}},
		{"GET", "/ITEMS/43/", seen{route: "/items/:id", status: 200}},
		{"DELETE", "/items/42", seen{route: "/items/:id", status: 401, code: "unauthenticated"}},
		{"GET", "/grp/thing", seen{route: "/grp/thing", status: 401, code: "unauthenticated"}},
		{"GET", "/files/a/b.png", seen{route: "/files/*", status: 200}},
		{"GET", "/nothing/here", seen{route: "", status: 404, code: "not_found"}},
		{"GET", "/healthz", seen{route: "/healthz", status: 200}},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		resp, err := srv.App.Test(req, -1)
		require.NoError(t, err)
		resp.Body.Close()
		mu.Lock()
		got := last
		got.err = nil
		require.Equal(t, tc.want, got, "%s %s", tc.method, tc.path)
		require.Equal(t, tc.want.status, resp.StatusCode)
		require.Equal(t, []string{"first", "second"}, order, "declared order, whatever the group's")
		order = nil
		mu.Unlock()
	}
}
