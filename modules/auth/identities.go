package auth

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Identities serves the caller's accounts on other apps and platforms:
//
//	POST   /api/v1/me/identities                   {"appid", "code", "anonymous_code"?} → the user
//	DELETE /api/v1/me/identities/{provider}/{appid} → 204
//
// A person who uses the product on two platforms binds the second one's
// account explicitly: unionids never link across platforms, and an account
// that belongs to another user is refused (409 identity_taken), never
// merged silently. Unbinding ends the sessions logged in through that app;
// the last identity cannot go (409 last_identity).
type Identities struct {
	apps     *provider.Registry
	users    user.Store
	strategy token.Strategy
	guard    *Guard
	log      *zap.Logger
}

// IdentitiesParams are NewIdentities' dependencies.
type IdentitiesParams struct {
	fx.In
	Apps     *provider.Registry
	Users    user.Store
	Strategy token.Strategy
	Guard    *Guard
	Logger   *zap.Logger
}

// NewIdentities returns the identity routes.
func NewIdentities(p IdentitiesParams) *Identities {
	return &Identities{apps: p.Apps, users: p.Users, strategy: p.Strategy, guard: p.Guard, log: p.Logger.Named("auth")}
}

// Register adds the routes.
func (h *Identities) Register(app *fiber.App) {
	app.Post("/api/v1/me/identities", h.guard.Handler(), h.Bind)
	app.Delete("/api/v1/me/identities/:provider/:appid", h.guard.Handler(), h.Unbind)
}

type bindRequest struct {
	AppID         *string `json:"appid"`
	Code          *string `json:"code"`
	AnonymousCode *string `json:"anonymous_code"`
}

// Bind attaches the account a login code proves to the caller.
func (h *Identities) Bind(c *fiber.Ctx) error {
	var req bindRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.AppID == nil || *req.AppID == "" {
		return httpserver.BadRequest("missing_appid", `say which app the code is from with "appid"`)
	}
	app, prov, err := h.apps.Resolve(*req.AppID)
	if err != nil {
		return httpserver.BadRequest("unknown_app", `this service does not serve the app named by "appid"`)
	}
	cred, err := credentials(app, req.Code, req.AnonymousCode)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	in, err := identity(ctx, app, prov, cred)
	if err != nil {
		return err
	}
	if in.OpenID == "" {
		return httpserver.BadRequest("invalid_request", "an anonymous device is no account to bind: send the code of a logged-in user")
	}
	in.AnonymousOpenID = "" // a bind attaches the account, not the device
	p, _ := PrincipalOf(c)
	res, err := h.users.Bind(ctx, p.UserID, in)
	if errors.Is(err, user.ErrIdentityTaken) {
		return httpserver.NewError(fiber.StatusConflict, "identity_taken",
			"that account belongs to another user; log in with it there, or ask support to join the two")
	}
	if err != nil {
		return err
	}
	h.log.Info("identity bound", zap.Int("user_id", p.UserID), zap.String("provider", in.Provider), zap.String("appid", in.AppID))
	return c.JSON(user.View(res.User, IdentityOf(p)))
}

// Unbind detaches the caller's identities of one app and ends the sessions
// logged in through it.
func (h *Identities) Unbind(c *fiber.Ctx) error {
	p, _ := PrincipalOf(c)
	ctx := c.UserContext()
	prov, appid := c.Params("provider"), c.Params("appid")
	gone, err := h.users.Unbind(ctx, p.UserID, prov, appid)
	switch {
	case errors.Is(err, user.ErrLastIdentity):
		return httpserver.NewError(fiber.StatusConflict, "last_identity", "this is your only way to log in: bind another account first")
	case errors.Is(err, user.ErrNotFound):
		return httpserver.NewError(fiber.StatusNotFound, "not_found", "you have no account of that app")
	case err != nil:
		return err
	}
	sessions, err := h.strategy.Sessions(ctx, p.UserID)
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if s.Provider == prov && s.AppID == appid {
			if err := h.strategy.RevokeSession(ctx, p.UserID, s.ID, token.ReasonRevoked); err != nil && !errors.Is(err, token.ErrSessionNotFound) {
				return err
			}
		}
	}
	h.log.Info("identity unbound", zap.Int("user_id", p.UserID), zap.String("provider", prov), zap.String("appid", appid), zap.Int("identities", len(gone)))
	return c.SendStatus(fiber.StatusNoContent)
}
