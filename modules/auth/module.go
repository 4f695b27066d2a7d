// Package auth is the login API and the middleware that protects routes.
//
// Routes: POST /api/v1/auth/login, /refresh, /logout, /logout/all and
// GET/PATCH /api/v1/me (see [Handlers.Register]); GET /api/v1/auth/sessions
// and DELETE /api/v1/auth/sessions/{id} (see [Sessions]). The middleware reads only
// "Authorization: Bearer <token>", verifies it through the configured
// token.Strategy and gives handlers a token.Principal ([PrincipalOf]).
//
// Business modules take a *Guard and protect their routes with
// Guard.Handler(). An application may replace the WeChat side of login by
// providing its own [CodeExchanger] with fx.Decorate, the user storage by
// decorating user.Store, and the token checks by decorating token.Strategy.
package auth

import (
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

// Module provides the *Guard and registers the login API's routes.
var Module = fx.Module("auth",
	fx.Provide(
		NewGuard,
		fx.Annotate(func(c wechat.Client) CodeExchanger { return c }),
		NewHandlers,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
		// The caller's sessions: GET/DELETE /api/v1/auth/sessions (sessions.go).
		httpserver.AsRoute(NewSessions),
	),
)
