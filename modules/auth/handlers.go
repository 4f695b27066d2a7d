package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/ratelimit"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Handlers serve the login API.
type Handlers struct {
	apps     *provider.Registry
	users    user.Store
	strategy token.Strategy
	guard    *Guard
	keys     *token.KeySet
	limits   ratelimit.Limits
	avatars  AvatarPolicy
	logger   *zap.Logger
	logins   singleflight.Group
	recheck  *recheck
	observer LoginObserver
}

// LoginObserver hears the outcome of every login request (metrics;
// modules/metrics provides one). It must be quick.
type LoginObserver interface {
	// LoginDone is one login request: appid is the app it was for when
	// the request named (or implied) a configured app, else ""; outcome is
	// "ok" or the error code answered ("invalid_code", …).
	LoginDone(appid, outcome string)
}

// HandlersParams are NewHandlers' dependencies.
type HandlersParams struct {
	fx.In
	Apps     *provider.Registry
	Users    user.Store
	Strategy token.Strategy
	Guard    *Guard
	// Keys publishes the JWT public keys; optional.
	Keys *token.KeySet `optional:"true"`
	// Limits are the abuse limits (failed logins per address, refreshes
	// per session); without them nothing is limited.
	Limits *ratelimit.Limits `optional:"true"`
	// Avatars judges avatar URLs set through PATCH; optional.
	Avatars AvatarPolicy `optional:"true"`
	Logger  *zap.Logger
	// Feed tells logins that a user's sessions were all ended meanwhile
	// (see recheck); without it every login reads its user again.
	Feed token.Feed `optional:"true"`
	// Lifecycle stops the background checks; optional.
	Lifecycle fx.Lifecycle `optional:"true"`
	// Observer hears every login's outcome; optional.
	Observer LoginObserver `optional:"true"`
}

// NewHandlers returns the login API handlers.
func NewHandlers(p HandlersParams) *Handlers {
	log := p.Logger.Named("auth")
	r, stop := newRecheck(p.Feed, p.Users, p.Strategy, log)
	if p.Lifecycle != nil {
		p.Lifecycle.Append(fx.StopHook(stop))
	}
	h := &Handlers{apps: p.Apps, users: p.Users, strategy: p.Strategy, guard: p.Guard, keys: p.Keys, avatars: p.Avatars,
		logger: log, recheck: r, observer: p.Observer}
	if p.Limits != nil {
		h.limits = *p.Limits
	}
	return h
}

// Register adds the routes:
//
//	POST  /api/v1/auth/login       {"code", "appid"?} → tokens and user
//	POST  /api/v1/auth/refresh     {"refresh_token"} → new tokens
//	POST  /api/v1/auth/logout      (bearer) → 204
//	POST  /api/v1/auth/logout/all  (bearer) → 204
//	GET   /api/v1/me               (bearer) → user
//	PATCH /api/v1/me               (bearer) {"nickname"?, "avatar_url"?} → user
//	DELETE /api/v1/me              (bearer) → 204: the caller's account is deleted
//	GET   /.well-known/jwks.json   the JWT public keys (EdDSA), else 404
func (h *Handlers) Register(app *fiber.App) {
	app.Get("/.well-known/jwks.json", h.JWKS)
	// Failed logins are limited per client address, successes are not:
	// many users share a carrier's address, while junk codes spend the
	// app's platform quota.
	app.Post("/api/v1/auth/login", ratelimit.New(ratelimit.Config{
		Limiter: h.limits.LoginFailures, FailuresOnly: true,
		Message: "too many failed logins from this address; retry later",
	}), h.Login)
	app.Post("/api/v1/auth/refresh", h.Refresh)
	app.Post("/api/v1/auth/logout", h.guard.Handler(), h.Logout)
	app.Post("/api/v1/auth/logout/all", h.guard.Handler(), h.LogoutAll)
	app.Get("/api/v1/me", h.guard.Handler(), h.Me)
	app.Patch("/api/v1/me", h.guard.Handler(), h.UpdateMe)
	app.Delete("/api/v1/me", h.guard.Handler(), h.DeleteMe)
}

// TokenResponse is the body of a successful login or refresh.
type TokenResponse struct {
	AccessToken      string       `json:"access_token"`
	TokenType        string       `json:"token_type"`
	ExpiresIn        int64        `json:"expires_in"`
	RefreshToken     string       `json:"refresh_token"`
	RefreshExpiresIn int64        `json:"refresh_expires_in"`
	User             *user.Public `json:"user,omitempty"`
}

func tokenResponse(p token.Pair, u *user.Public) TokenResponse {
	now := time.Now()
	return TokenResponse{
		AccessToken:      p.AccessToken,
		TokenType:        "Bearer",
		ExpiresIn:        int64(p.ExpiresAt.Sub(now).Round(time.Second).Seconds()),
		RefreshToken:     p.RefreshToken,
		RefreshExpiresIn: int64(p.RefreshExpiresAt.Sub(now).Round(time.Second).Seconds()),
		User:             u,
	}
}

// MaxCodeLen bounds a wx.login code (real ones have 32 characters).
const MaxCodeLen = 256

type loginRequest struct {
	Code  *string `json:"code"`
	AppID *string `json:"appid"`
	// AnonymousCode is Douyin's anonymousCode (tt.login): alone from a
	// device not logged in to Douyin, or next to the code.
	AnonymousCode *string `json:"anonymous_code"`
	// Client is miniprogram, h5, app or web (default: from the app's kind);
	// Device is free text naming the device, kept on the session.
	Client *string `json:"client"`
	Device *string `json:"device"`
}

// session returns the client and device a login keeps on its session.
func (r loginRequest) session(app config.App) (client, device string, err error) {
	client = token.ClientMiniProgram
	if app.Kind == config.KindOAuth {
		client = token.ClientH5
	}
	if r.Client != nil && *r.Client != "" {
		client = *r.Client
	}
	if !token.ValidClient(client) {
		return "", "", httpserver.BadRequest("invalid_client", `"client" must be one of `+strings.Join(token.Clients, ", "))
	}
	if r.Device != nil {
		device = strings.TrimSpace(*r.Device)
	}
	if !token.ValidDevice(device) {
		return "", "", httpserver.BadRequest("invalid_device", fmt.Sprintf(`"device" must be text of at most %d characters`, token.MaxDeviceLen))
	}
	return client, device, nil
}

// Login exchanges a device's login code for our user and tokens. The app
// is the request's "appid", which may be left out when one app is
// configured. Concurrent requests with one code share one platform call
// and one answer, so a client that retries does not burn its code against
// itself.
func (h *Handlers) Login(c *fiber.Ctx) (err error) {
	var app config.App
	if h.observer != nil {
		defer func() {
			outcome := "ok"
			if err != nil {
				outcome = httpserver.Map(err).Code
			}
			h.observer.LoginDone(app.AppID, outcome)
		}()
	}
	var req loginRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	app, prov, err := h.resolveApp(req.AppID)
	if err != nil {
		return err
	}
	cred, err := credentials(app, req.Code, req.AnonymousCode)
	if err != nil {
		return err
	}
	client, device, err := req.session(app)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(app.AppID + "\x00" + cred.Code + "\x00" + cred.AnonymousCode))
	key := hex.EncodeToString(sum[:])
	// Detached from the request: the shared call must finish even if the
	// first caller goes away, since the code is spent at the platform either
	// way; but not from its deadline, so that a silent database is a 503.
	ctx := context.WithoutCancel(c.UserContext())
	if dl, ok := c.UserContext().Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	v, err, _ := h.logins.Do(key, func() (any, error) {
		return h.login(ctx, app, prov, cred, client, device)
	})
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// resolveApp finds the app a login is for: the given appid, or the only
// configured app.
func (h *Handlers) resolveApp(appid *string) (config.App, provider.Provider, error) {
	if appid == nil || *appid == "" {
		apps := h.apps.Apps()
		if len(apps) != 1 {
			return config.App{}, nil, httpserver.BadRequest("missing_appid",
				"this service serves several apps: say which one with \"appid\" (wx.getAccountInfoSync().miniProgram.appId)")
		}
		appid = &apps[0].AppID
	}
	app, prov, err := h.apps.Resolve(*appid)
	if err != nil {
		return config.App{}, nil, httpserver.BadRequest("unknown_app", "this service does not serve the app named by \"appid\"")
	}
	return app, prov, nil
}

// credentials checks the codes a login (or a bind) sends: a code, and for
// Douyin an anonymous code next to it or alone.
func credentials(app config.App, code, anonymous *string) (provider.Credentials, error) {
	var c provider.Credentials
	if code != nil {
		c.Code = *code
	}
	if anonymous != nil {
		c.AnonymousCode = *anonymous
	}
	if c.AnonymousCode != "" && app.Platform != config.PlatformDouyin {
		return c, httpserver.BadRequest("invalid_request", `"anonymous_code" is Douyin's; this app is not a Douyin app`)
	}
	if c.Code == "" && c.AnonymousCode == "" {
		return c, httpserver.BadRequest("missing_code", `the request body must carry the login code (wx.login's) as "code"`)
	}
	for _, v := range []string{c.Code, c.AnonymousCode} {
		if len(v) > MaxCodeLen || !printableASCII(v) {
			return c, httpserver.NewError(fiber.StatusUnauthorized, "invalid_code", "the code is not a login code; call the login again for a new one")
		}
	}
	return c, nil
}

// identity asks the app's provider for the identity cred proves, as the
// user store takes it.
func identity(ctx context.Context, app config.App, prov provider.Provider, cred provider.Credentials) (user.LoginInput, error) {
	id, err := prov.Login(ctx, app, cred)
	if err != nil {
		return user.LoginInput{}, err
	}
	if id.Provider != app.Platform || id.AppID != app.AppID || (id.OpenID == "" && id.AnonymousOpenID == "") {
		return user.LoginInput{}, fmt.Errorf("auth: the %s provider vouched for an identity of another app or none", app.Platform)
	}
	return user.LoginInput{
		Provider: id.Provider, Kind: id.Kind, AppID: id.AppID, OpenID: id.OpenID, UnionID: id.UnionID,
		SessionKey: id.SessionKey.Reveal(), Nickname: id.Nickname, AvatarURL: id.AvatarURL,
		AnonymousOpenID: id.AnonymousOpenID,
	}, nil
}

func (h *Handlers) login(ctx context.Context, app config.App, prov provider.Provider, cred provider.Credentials, client, device string) (TokenResponse, error) {
	in, err := identity(ctx, app, prov, cred)
	if err != nil {
		return TokenResponse{}, err
	}
	began := h.recheck.begin()
	res, err := h.users.Login(ctx, in)
	if err != nil {
		return TokenResponse{}, err
	}
	key := user.KeyOf(res.Identity)
	pair, err := h.strategy.Issue(ctx, token.Subject{UserID: res.User.ID, Provider: key.Provider, AppID: key.AppID, OpenID: key.OpenID,
		Client: client, Device: device})
	if err != nil {
		return TokenResponse{}, err
	}
	// A ban, deletion or merge committed while this login ran ended the
	// sessions it saw, not this one: the feed says whether one may have
	// (see recheck); then the user is read again now.
	if h.recheck.issuedNow(res.User.ID, pair.SessionID, began) {
		if err := endIfInactive(ctx, h.users, h.strategy, res.User.ID); err != nil {
			if !inactive(err) {
				h.logger.Warn("a login could not check whether its user was banned or deleted meanwhile", zap.Int("user_id", res.User.ID), zap.Error(err))
			}
			return TokenResponse{}, err
		}
	}
	view := user.View(res.User, key)
	h.logger.Info("login", zap.Int("user_id", res.User.ID), zap.String("appid", app.AppID), zap.Bool("created", res.Created))
	return tokenResponse(pair, &view), nil
}

type refreshRequest struct {
	RefreshToken *string `json:"refresh_token"`
}

// Refresh rotates a refresh token.
func (h *Handlers) Refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == nil || *req.RefreshToken == "" {
		return httpserver.BadRequest("missing_refresh_token", "the request body must carry \"refresh_token\"")
	}
	if len(*req.RefreshToken) > MaxTokenLen {
		return token.ErrInvalidRefresh
	}
	ctx := c.UserContext()
	// Refreshes are counted per session, and only those of genuine refresh
	// tokens (accepted, or detected as reused): a forged token naming a
	// session someone saw in a JWT must not use that session's allowance up.
	sid := refreshSession(*req.RefreshToken)
	if sid != "" {
		if err := ratelimit.Check(ctx, h.limits.Refresh, sid, "too many refreshes of this session; retry later"); err != nil {
			return err
		}
	}
	pair, err := h.strategy.Refresh(ctx, *req.RefreshToken)
	if sid != "" && (err == nil || errors.Is(err, token.ErrRefreshReused)) {
		ratelimit.Record(context.WithoutCancel(ctx), h.limits.Refresh, sid)
	}
	if err != nil {
		return err
	}
	return c.JSON(tokenResponse(pair, nil))
}

// refreshSession is the session id a refresh token names ("<session
// id>.<secret>"), or "" when it names none.
func refreshSession(rt string) string {
	sid, _, ok := strings.Cut(rt, ".")
	if !ok || sid == "" || len(sid) > 128 {
		return ""
	}
	return sid
}

// Logout revokes the caller's session: this access token and its refresh
// token. The user's other sessions keep working.
func (h *Handlers) Logout(c *fiber.Ctx) error {
	p, _ := PrincipalOf(c)
	if err := h.strategy.Revoke(c.UserContext(), p); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// LogoutAll revokes every session of the caller.
func (h *Handlers) LogoutAll(c *fiber.Ctx) error {
	p, _ := PrincipalOf(c)
	if err := h.strategy.RevokeAll(c.UserContext(), p.UserID, token.ReasonLoggedOut); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// Me returns the caller.
func (h *Handlers) Me(c *fiber.Ctx) error {
	p, _ := PrincipalOf(c)
	u, err := h.users.Get(c.UserContext(), p.UserID)
	if err != nil {
		return err
	}
	return c.JSON(user.View(u, IdentityOf(p)))
}

// IdentityOf is the identity a principal logged in with.
func IdentityOf(p token.Principal) user.IdentityKey {
	return user.IdentityKey{Provider: p.Provider, AppID: p.AppID, OpenID: p.OpenID}
}

type updateMeRequest struct {
	Nickname  *string `json:"nickname"`
	AvatarURL *string `json:"avatar_url"`
}

// UpdateMe changes the caller's nickname and/or avatar URL. The user is
// the one the token names; nothing in the body can point elsewhere.
func (h *Handlers) UpdateMe(c *fiber.Ctx) error {
	var req updateMeRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Nickname == nil && req.AvatarURL == nil {
		return httpserver.BadRequest("empty_update", "give \"nickname\" and/or \"avatar_url\"")
	}
	p, _ := PrincipalOf(c)
	if req.AvatarURL != nil && h.avatars != nil {
		if err := h.avatars.CheckAvatarURL(c.UserContext(), p.UserID, *req.AvatarURL); err != nil {
			return err
		}
	}
	u, err := h.users.UpdateProfile(c.UserContext(), p.UserID, user.ProfileUpdate{Nickname: req.Nickname, AvatarURL: req.AvatarURL})
	if err != nil {
		return err
	}
	return c.JSON(user.View(u, IdentityOf(p)))
}

// DeleteMe deletes the caller's account: personal data erased (see
// user.Store.Delete), every session ended. It answers 204 only once the
// sessions have ended on this instance (the listener ended them already;
// this makes sure of it); the other instances follow within a second.
// Asking again with a token that still works answers 204 again.
func (h *Handlers) DeleteMe(c *fiber.Ctx) error {
	p, _ := PrincipalOf(c)
	ctx := c.UserContext()
	if err := h.users.Delete(ctx, p.UserID, user.CauseUser); err != nil {
		return err
	}
	h.logger.Info("account deleted by its user", zap.Int("user_id", p.UserID))
	if err := h.strategy.RevokeAll(ctx, p.UserID, token.ReasonUserDeleted); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// JWKS publishes the public keys that verify access tokens, so other
// services can check them without any secret. With HS256 there is nothing
// public to publish: 404.
func (h *Handlers) JWKS(c *fiber.Ctx) error {
	if h.keys == nil {
		return fiber.ErrNotFound
	}
	doc, ok := h.keys.JWKS()
	if !ok {
		return httpserver.NewError(fiber.StatusNotFound, "not_found", "no public keys: tokens are not signed with EdDSA (APP_TOKEN_JWT_ALG)")
	}
	c.Set(fiber.HeaderContentType, "application/jwk-set+json")
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(doc)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// AvatarPolicy judges the avatar URL a user sets through PATCH /api/v1/me;
// modules/avatar provides one that refuses URLs of files stored here that
// the user did not upload. An error is the answer (a user.ValidationError
// is 400 invalid_avatar_url).
type AvatarPolicy interface {
	CheckAvatarURL(ctx context.Context, userID int, url string) error
}
