// Package example is a tiny business module: copy it to start your own.
//
// It registers GET /api/v1/example/greeting behind the auth middleware and
// answers with who the token says the caller is. A real module would take
// its own services (a store, a client) in NewRoutes' parameters, exactly
// like it takes the *auth.Guard here. Nothing in it needs replacing: leave
// the module out of your application to drop the route.
package example

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// Module registers the example route.
var Module = fx.Module("example",
	fx.Provide(httpserver.AsRoute(NewRoutes)),
)

// Routes is the module's route set.
type Routes struct {
	guard *auth.Guard
}

// NewRoutes returns the routes, protected by guard.
func NewRoutes(guard *auth.Guard) *Routes { return &Routes{guard: guard} }

// Greeting is the route's answer.
type Greeting struct {
	Message string `json:"message"`
	UserID  int    `json:"user_id"`
	OpenID  string `json:"openid"`
}

// Register adds GET /api/v1/example/greeting.
func (r *Routes) Register(app *fiber.App) {
	group := app.Group("/api/v1/example", r.guard.Handler())
	group.Get("/greeting", func(c *fiber.Ctx) error {
		p, _ := auth.PrincipalOf(c) // always there behind the guard
		return c.JSON(Greeting{
			Message: fmt.Sprintf("hello, user %d", p.UserID),
			UserID:  p.UserID,
			OpenID:  p.OpenID,
		})
	})
}
