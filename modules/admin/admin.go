// Package admin is the operators' API: look users up, ban and unban them,
// end their sessions, delete them.
//
//	GET    /admin/v1/users/{id}             the user with status, identities and live sessions
//	GET    /admin/v1/users?openid=|unionid=|phone=   matching users
//	POST   /admin/v1/users/{id}/ban         {"reason", "until"?} → the user
//	POST   /admin/v1/users/{id}/unban       → the user
//	DELETE /admin/v1/users/{id}/sessions    → 204: every session ends (reason "revoked")
//	DELETE /admin/v1/sessions/{id}          → 204: that session ends
//	DELETE /admin/v1/users/{id}             → 204: the user is deleted as by DELETE /api/v1/me
//
// The routes exist only when config.Admin.Token (APP_ADMIN_TOKEN) is set;
// without it every path answers 404 as any unknown path does. A call must
// carry "Authorization: Bearer <APP_ADMIN_TOKEN>" (compared in constant
// time). Every call, refused ones included, writes one audit line to the
// "audit" logger: who ("admin", or "unauthenticated"), what, which user or
// session, and the status; never the token, never a searched value.
//
// [Module] joins the routes to the "routes" group. An application that
// wants another guard (its own operator accounts, an allow-list of IPs)
// decorates *fiber.App with middleware on /admin, or leaves [Module] out
// and mounts [Handlers] behind its own.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Module provides the admin *Handlers and joins them to the "routes"
// group; they register nothing unless APP_ADMIN_TOKEN is set.
var Module = fx.Module("admin",
	fx.Provide(
		New,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
	),
)

// Params are New's dependencies.
type Params struct {
	fx.In
	Config   config.Admin
	Users    user.Store
	Strategy token.Strategy
	Logger   *zap.Logger
}

// Handlers serve the admin API.
type Handlers struct {
	enabled  bool
	digest   [sha256.Size]byte
	users    user.Store
	strategy token.Strategy
	audit    *zap.Logger
	now      func() time.Time
}

// New returns the admin handlers for cfg.
func New(p Params) *Handlers {
	return &Handlers{
		enabled:  p.Config.Enabled(),
		digest:   sha256.Sum256([]byte(p.Config.Token)),
		users:    p.Users,
		strategy: p.Strategy,
		audit:    p.Logger.Named("audit"),
		now:      time.Now,
	}
}

// Register adds the routes when the admin API is enabled.
func (h *Handlers) Register(app *fiber.App) {
	if !h.enabled {
		return
	}
	g := app.Group("/admin/v1", h.authenticate)
	g.Get("/users", h.Search)
	g.Get("/users/:id", h.GetUser)
	g.Post("/users/:id/ban", h.Ban)
	g.Post("/users/:id/unban", h.Unban)
	g.Delete("/users/:id/sessions", h.EndSessions)
	g.Delete("/users/:id", h.DeleteUser)
	g.Delete("/sessions/:id", h.EndSession)
}

// audit keys kept in the request's locals by each handler.
const (
	localWhat    = "admin.what"
	localTarget  = "admin.target"
	localFound   = "admin.found"
	localBy      = "admin.by"
	maxSessionID = 128
)

// authenticate checks the bearer token, then runs the handler and writes
// the audit line.
func (h *Handlers) authenticate(c *fiber.Ctx) error {
	scheme, given, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(given)))
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], h.digest[:]) != 1 {
		h.write(c, "unauthenticated", c.Method()+" "+c.Path(), fiber.StatusUnauthorized)
		return httpserver.NewError(fiber.StatusUnauthorized, "unauthenticated", "the admin API needs Authorization: Bearer <APP_ADMIN_TOKEN>")
	}
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		status = httpserver.Map(err).Status
	}
	what, _ := c.Locals(localWhat).(string)
	if what == "" {
		what = c.Method() + " " + c.Path() // an unknown admin path
	}
	h.write(c, "admin", what, status)
	return err
}

// write is the audit line.
func (h *Handlers) write(c *fiber.Ctx, who, what string, status int) {
	fields := []zap.Field{zap.String("who", who), zap.String("what", what), zap.Int("status", status),
		zap.String("request_id", httpserver.RequestID(c)), zap.String("ip", c.IP())}
	switch t := c.Locals(localTarget).(type) {
	case int:
		fields = append(fields, zap.Int("user_id", t))
	case string:
		fields = append(fields, zap.String("session_id", t))
	}
	if by, ok := c.Locals(localBy).(string); ok {
		fields = append(fields, zap.String("by", by))
	}
	if found, ok := c.Locals(localFound).([]int); ok {
		fields = append(fields, zap.Ints("found_user_ids", found))
	}
	h.audit.Info("admin call", fields...)
}

// notFound is the answer for an unknown user or session.
func notFound(what string) error {
	return httpserver.NewError(fiber.StatusNotFound, "not_found", "no such "+what)
}

// userID reads the {id} of a user path and marks it for the audit line.
func (h *Handlers) userID(c *fiber.Ctx, what string) (int, error) {
	c.Locals(localWhat, what)
	id, err := strconv.Atoi(c.Params("id"))
	if err != nil || id <= 0 || id > 1<<53 {
		return 0, notFound("user")
	}
	c.Locals(localTarget, id)
	return id, nil
}

// userErr answers an unknown user with 404 (the API's own routes answer a
// token's vanished user with 401).
func userErr(err error) error {
	if errors.Is(err, user.ErrNotFound) {
		return notFound("user")
	}
	return err
}

// UserView is a user as operators see it.
type UserView struct {
	ID     int    `json:"id"`
	Status string `json:"status"`
	// BannedUntil and BanReason are set while the user is banned
	// (BannedUntil null for a ban without end).
	BannedUntil      *time.Time     `json:"banned_until"`
	BanReason        *string        `json:"ban_reason"`
	Nickname         string         `json:"nickname"`
	AvatarURL        string         `json:"avatar_url"`
	Phone            *string        `json:"phone"`
	PhoneCountryCode *string        `json:"phone_country_code"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
	Identities       []IdentityView `json:"identities"`
	// Sessions are the live sessions (not in search results).
	Sessions []SessionView `json:"sessions,omitempty"`
}

// IdentityView is one identity of the user.
type IdentityView struct {
	Provider    string     `json:"provider"`
	Kind        string     `json:"kind"`
	AppID       string     `json:"appid"`
	OpenID      string     `json:"openid"`
	UnionID     *string    `json:"unionid"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

// SessionView is one live session of the user.
type SessionView struct {
	ID         string    `json:"id"`
	Client     string    `json:"client"`
	Device     string    `json:"device"`
	Provider   string    `json:"provider"`
	AppID      string    `json:"appid"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (h *Handlers) view(u *ent.User) UserView {
	v := UserView{
		ID: u.ID, Status: user.StatusOf(u, h.now()), Nickname: u.Nickname, AvatarURL: u.AvatarURL,
		Phone: u.Phone, PhoneCountryCode: u.PhoneCountryCode,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
		Identities: make([]IdentityView, 0, len(u.Edges.Identities)),
	}
	if v.Status == user.StatusBanned {
		if u.BannedUntil != nil {
			t := u.BannedUntil.UTC()
			v.BannedUntil = &t
		}
		reason := u.BanReason
		v.BanReason = &reason
	}
	for _, id := range u.Edges.Identities {
		iv := IdentityView{Provider: id.Provider, Kind: id.Kind, AppID: id.Appid, OpenID: id.Openid, UnionID: id.Unionid,
			CreatedAt: id.CreatedAt.UTC()}
		if id.LastLoginAt != nil {
			t := id.LastLoginAt.UTC()
			iv.LastLoginAt = &t
		}
		v.Identities = append(v.Identities, iv)
	}
	return v
}

// withSessions is the view of u with its live sessions.
func (h *Handlers) withSessions(c *fiber.Ctx, u *ent.User) (UserView, error) {
	v := h.view(u)
	list, err := h.strategy.Sessions(c.UserContext(), u.ID)
	if err != nil {
		return v, err
	}
	v.Sessions = make([]SessionView, len(list))
	for i, s := range list {
		v.Sessions[i] = SessionView{ID: s.ID, Client: s.Client, Device: s.Device, Provider: s.Provider, AppID: s.AppID,
			CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(), ExpiresAt: s.ExpiresAt.UTC()}
	}
	return v, nil
}

// answer sends the user with its sessions.
func (h *Handlers) answer(c *fiber.Ctx, u *ent.User) error {
	v, err := h.withSessions(c, u)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// GetUser answers the user with status, identities and live sessions.
func (h *Handlers) GetUser(c *fiber.Ctx) error {
	id, err := h.userID(c, "get_user")
	if err != nil {
		return err
	}
	u, err := h.users.Get(c.UserContext(), id)
	if err != nil {
		return userErr(err)
	}
	return h.answer(c, u)
}

// Search answers {"users": [...]} for exactly one of openid, unionid, phone.
func (h *Handlers) Search(c *fiber.Ctx) error {
	q := user.Query{OpenID: c.Query("openid"), UnionID: c.Query("unionid"), Phone: c.Query("phone")}
	by := []string{}
	for name, v := range map[string]string{"openid": q.OpenID, "unionid": q.UnionID, "phone": q.Phone} {
		if v != "" {
			by = append(by, name)
		}
	}
	c.Locals(localWhat, "search_users")
	c.Locals(localBy, strings.Join(by, ","))
	if len(by) != 1 {
		return httpserver.BadRequest("invalid_query", "give exactly one of ?openid=, ?unionid=, ?phone=")
	}
	users, err := h.users.Find(c.UserContext(), q)
	if err != nil {
		return err
	}
	out := make([]UserView, len(users))
	found := make([]int, len(users))
	for i, u := range users {
		out[i], found[i] = h.view(u), u.ID
	}
	c.Locals(localFound, found)
	return c.JSON(fiber.Map{"users": out})
}

type banRequest struct {
	Reason *string `json:"reason"`
	Until  *string `json:"until"`
}

// Ban bans the user: every session ends on every instance (reason
// user_banned) before the answer on this one, the others within a second.
func (h *Handlers) Ban(c *fiber.Ctx) error {
	id, err := h.userID(c, "ban_user")
	if err != nil {
		return err
	}
	var req banRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Reason == nil {
		return httpserver.BadRequest("invalid_reason", `give the ban's "reason" (kept for operators, never shown to the user)`)
	}
	b := user.Ban{Reason: *req.Reason}
	if req.Until != nil && *req.Until != "" {
		t, err := time.Parse(time.RFC3339, *req.Until)
		if err != nil {
			return httpserver.BadRequest("invalid_until", `"until" must be an RFC 3339 time such as 2030-01-02T15:04:05Z`)
		}
		b.Until = &t
	}
	ctx := c.UserContext()
	u, err := h.users.Ban(ctx, id, b)
	if err != nil {
		return userErr(err)
	}
	if err := h.strategy.RevokeAll(ctx, id, token.ReasonUserBanned); err != nil {
		return err
	}
	return h.answer(c, u)
}

// Unban lifts the user's ban.
func (h *Handlers) Unban(c *fiber.Ctx) error {
	id, err := h.userID(c, "unban_user")
	if err != nil {
		return err
	}
	u, err := h.users.Unban(c.UserContext(), id)
	if err != nil {
		return userErr(err)
	}
	return h.answer(c, u)
}

// EndSessions ends every session of the user (reason revoked).
func (h *Handlers) EndSessions(c *fiber.Ctx) error {
	id, err := h.userID(c, "end_user_sessions")
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := h.users.CheckActive(ctx, id); errors.Is(err, user.ErrNotFound) {
		return notFound("user")
	} else if err != nil && !errors.Is(err, user.ErrBanned) {
		return err
	}
	if err := h.strategy.RevokeAll(ctx, id, token.ReasonRevoked); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// EndSession ends one session, whoever's it is (reason revoked).
func (h *Handlers) EndSession(c *fiber.Ctx) error {
	c.Locals(localWhat, "end_session")
	sid := strings.Clone(c.Params("id"))
	if sid == "" || len(sid) > maxSessionID {
		return notFound("session")
	}
	c.Locals(localTarget, sid)
	owners, ok := h.strategy.(token.SessionOwner)
	if !ok {
		return httpserver.NewError(fiber.StatusNotImplemented, "not_supported", "this token strategy cannot tell whose a session is")
	}
	ctx := c.UserContext()
	uid, err := owners.SessionOwner(ctx, sid)
	if err != nil {
		return err
	}
	if err := h.strategy.RevokeSession(ctx, uid, sid, token.ReasonRevoked); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// DeleteUser deletes the user as the user's own deletion does.
func (h *Handlers) DeleteUser(c *fiber.Ctx) error {
	id, err := h.userID(c, "delete_user")
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := h.users.Delete(ctx, id, user.CauseOperator); err != nil {
		return userErr(err)
	}
	if err := h.strategy.RevokeAll(ctx, id, token.ReasonUserDeleted); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
