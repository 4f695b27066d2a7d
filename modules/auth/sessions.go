package auth

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/token"
)

// Sessions serves the caller's own sessions (one per login, i.e. device):
//
//	GET    /api/v1/auth/sessions        (bearer) → {"sessions": [...]}
//	DELETE /api/v1/auth/sessions/{id}   (bearer) → 204
type Sessions struct {
	strategy token.Strategy
	guard    *Guard
}

// NewSessions returns the session routes.
func NewSessions(s token.Strategy, g *Guard) *Sessions { return &Sessions{strategy: s, guard: g} }

// Register adds the routes.
func (h *Sessions) Register(app *fiber.App) {
	app.Get("/api/v1/auth/sessions", h.guard.Handler(), h.List)
	app.Delete("/api/v1/auth/sessions/:id", h.guard.Handler(), h.Delete)
}

// SessionView is one session in the list.
type SessionView struct {
	ID         string    `json:"id"`
	Client     string    `json:"client"`
	Device     string    `json:"device"`
	AppID      string    `json:"appid"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	// Current marks the session of the token that asked.
	Current bool `json:"current"`
}

// List answers the caller's live sessions, the most recently seen first.
func (h *Sessions) List(c *fiber.Ctx) error {
	p, _ := PrincipalOf(c)
	list, err := h.strategy.Sessions(c.UserContext(), p.UserID)
	if err != nil {
		return err
	}
	out := make([]SessionView, len(list))
	for i, s := range list {
		out[i] = SessionView{ID: s.ID, Client: s.Client, Device: s.Device, AppID: s.AppID,
			CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(), Current: s.ID == p.SessionID}
	}
	return c.JSON(fiber.Map{"sessions": out})
}

// maxSessionIDLen bounds the path parameter (session ids have 22 or 48 characters).
const maxSessionIDLen = 128

// Delete ends one of the caller's sessions (reason "revoked": its tokens
// are refused with that reason). Another user's session, an unknown id or an
// ended session is 404, the same answer, so that nothing tells whether it
// exists.
func (h *Sessions) Delete(c *fiber.Ctx) error {
	p, _ := PrincipalOf(c)
	id := strings.Clone(c.Params("id")) // Fiber reuses the buffer after the request
	if id == "" || len(id) > maxSessionIDLen {
		return httpserver.NewError(fiber.StatusNotFound, "not_found", "no such session")
	}
	if err := h.strategy.RevokeSession(c.UserContext(), p.UserID, id, token.ReasonRevoked); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
