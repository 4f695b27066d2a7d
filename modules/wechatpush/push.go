// Package wechatpush receives WeChat's message pushes (消息推送) for the
// mini programs that configure them, and acts on the user-authorization
// events:
//
//	GET  /wechat/push/{appid}   WeChat's URL check: signature over [Token, timestamp, nonce] → echostr
//	POST /wechat/push/{appid}   a push, plain or safe mode, JSON or XML → "success"
//
// An app takes part when its entry of APP_APPS has push_token (the
// console's Token); with push_aes_key (its EncodingAESKey) too, pushes must
// come encrypted (safe or compatible mode) and are verified by
// msg_signature, else in plain by signature. A bad signature, or a
// timestamp more than [MaxSkew] from now, is a 401 and nothing is done.
//
//   - user_authorization_revoke: what was withdrawn is erased from the
//     identity's user (RevokeInfo 6/205/301 nickname and avatar, 19
//     nickname, 20 avatar, 8 phone, 301 everything); listeners hear
//     user.ProfileCleared with the codes in any case, for what business
//     modules keep;
//   - user_authorization_cancellation: the identity is erased; the user's
//     last one deletes the user (user.Store.RemoveIdentity);
//   - user_info_modified: WeChat cleaned up a risky profile: nickname and
//     avatar are cleared and listeners told.
//
// The user is matched by (AppID, OpenID). An event without an OpenID, for
// an unknown user or another app, and any other event or message is
// logged and answered "success", ignored. A request seen before (its
// signature, timestamp and nonce) or an event seen before (FromUserName,
// CreateTime, Event, OpenID, RevokeInfo) is answered "success" and not
// acted on again: in Redis when configured (the whole fleet), else in
// memory. If acting fails (the database is down) the answer is a 503 and
// WeChat's retry is handled.
//
// [Module] joins the routes to the "routes" group. An application may
// replace where seen pushes are remembered with fx.Decorate(func(Seen) Seen { … }).
package wechatpush

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/msgcrypt"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Module provides the *Handlers (and the Seen they remember pushes with)
// and joins them to the "routes" group.
var Module = fx.Module("wechatpush",
	fx.Provide(
		ProvideSeen,
		New,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
	),
)

// The events acted on.
const (
	EventUserInfoModified    = "user_info_modified"
	EventAuthorizationRevoke = "user_authorization_revoke"
	EventAuthorizationCancel = "user_authorization_cancellation"
)

const (
	causePrefix    = "wechat:"
	seenTTL        = 3 * MaxSkew
	memorySeenSize = 100_000
	pathPrefix     = "/wechat/push/"
	successBody    = "success"
	maxQueryParam  = 256
	badSignature   = "the push's signature does not verify"
	staleTimestamp = "the push's timestamp is too far from now"
)

// MaxSkew is how far a push's timestamp may be from now. WeChat documents
// no window; this is our policy against replays [U].
const MaxSkew = 5 * time.Minute

// SeenParams are ProvideSeen's dependencies.
type SeenParams struct {
	fx.In
	Redis config.Redis
	// RedisClient is provided only when Redis is configured.
	RedisClient redis.UniversalClient `optional:"true"`
}

// ProvideSeen remembers pushes in Redis when it is configured, else in memory.
func ProvideSeen(p SeenParams) Seen {
	if p.RedisClient != nil {
		return NewRedisSeen(p.RedisClient, p.Redis.Prefix)
	}
	return NewMemorySeen(memorySeenSize, nil)
}

// Params are New's dependencies.
type Params struct {
	fx.In
	Apps   config.Apps
	Users  user.Store
	Seen   Seen
	Logger *zap.Logger
}

// app is one app that receives pushes.
type app struct {
	appid string
	token string
	key   *msgcrypt.Key // nil: plain mode
}

// Handlers serve the push URL of every app that configures one.
type Handlers struct {
	apps  map[string]app
	users user.Store
	seen  Seen
	log   *zap.Logger
	now   func() time.Time
}

// New returns the handlers for the WeChat apps with a push_token.
func New(p Params) (*Handlers, error) {
	h := &Handlers{apps: map[string]app{}, users: p.Users, seen: p.Seen, log: p.Logger.Named("wechatpush"), now: time.Now}
	for _, a := range p.Apps.Of(config.PlatformWeChat) {
		if a.PushToken == "" {
			continue
		}
		x := app{appid: a.AppID, token: a.PushToken}
		if a.PushAESKey != "" {
			k, err := msgcrypt.ParseKey(a.PushAESKey)
			if err != nil {
				return nil, errors.New("wechatpush: app " + a.AppID + ": push_aes_key is not an EncodingAESKey")
			}
			x.key = k
		}
		h.apps[a.AppID] = x
	}
	return h, nil
}

// WithClock sets the clock (tests).
func (h *Handlers) WithClock(now func() time.Time) *Handlers { h.now = now; return h }

// Register adds GET and POST /wechat/push/:appid.
func (h *Handlers) Register(a *fiber.App) {
	a.Get(pathPrefix+":appid", h.Verify)
	a.Post(pathPrefix+":appid", h.Receive)
}

// app finds the app the URL names and checks the request's timestamp.
func (h *Handlers) app(c *fiber.Ctx) (app, error) {
	a, ok := h.apps[c.Params("appid")]
	if !ok {
		return app{}, httpserver.NewError(fiber.StatusNotFound, "not_found", "no app here receives pushes at this URL")
	}
	for _, k := range []string{"signature", "timestamp", "nonce", "msg_signature", "echostr"} {
		if len(c.Query(k)) > maxQueryParam {
			return app{}, httpserver.BadRequest("invalid_request", "a query parameter is too long")
		}
	}
	ts, err := strconv.ParseInt(c.Query("timestamp"), 10, 64)
	if err != nil {
		return app{}, refused(badSignature)
	}
	if d := h.now().Sub(time.Unix(ts, 0)); d > MaxSkew || d < -MaxSkew {
		return app{}, refused(staleTimestamp)
	}
	return a, nil
}

func refused(msg string) error {
	return httpserver.NewError(fiber.StatusUnauthorized, "invalid_signature", msg)
}

// Verify answers WeChat's URL check with echostr when the signature holds.
func (h *Handlers) Verify(c *fiber.Ctx) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	if !msgcrypt.Verify(c.Query("signature"), a.token, c.Query("timestamp"), c.Query("nonce")) {
		h.log.Warn("push URL check refused: bad signature", zap.String("appid", a.appid))
		return refused(badSignature)
	}
	echo := c.Query("echostr")
	if echo == "" {
		return httpserver.BadRequest("invalid_request", "echostr is missing")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	return c.SendString(echo)
}

// Receive verifies, opens and acts on a push.
func (h *Handlers) Receive(c *fiber.Ctx) error {
	a, err := h.app(c)
	if err != nil {
		return err
	}
	if len(c.Body()) > MaxBody {
		return httpserver.NewError(fiber.StatusRequestEntityTooLarge, "body_too_large", "a push is at most 64 KiB")
	}
	ts, nonce := c.Query("timestamp"), c.Query("nonce")
	outer, perr := ParseMessage(c.Body())
	var msg Message
	var sig string
	if a.key != nil {
		// Safe or compatible mode: msg_signature covers the ciphertext.
		sig = c.Query("msg_signature")
		if perr != nil || outer.Encrypt == "" || !msgcrypt.Verify(sig, a.token, ts, nonce, outer.Encrypt) {
			h.log.Warn("push refused: no encrypted message with a valid msg_signature (push_aes_key is set: the console must be in safe or compatible mode)",
				zap.String("appid", a.appid))
			return refused(badSignature)
		}
		plain, err := a.key.Decrypt(outer.Encrypt, a.appid)
		if err != nil {
			h.log.Warn("push refused: it does not decrypt for this app", zap.String("appid", a.appid), zap.Error(err))
			return httpserver.BadRequest("invalid_encrypted_data", "the push does not decrypt for this app")
		}
		if msg, err = ParseMessage(plain); err != nil {
			h.log.Warn("push ignored: the decrypted message is not one", zap.String("appid", a.appid))
			return h.success(c)
		}
	} else {
		sig = c.Query("signature")
		if !msgcrypt.Verify(sig, a.token, ts, nonce) {
			h.log.Warn("push refused: bad signature", zap.String("appid", a.appid))
			return refused(badSignature)
		}
		if perr != nil {
			h.log.Warn("push ignored: the body is not a message", zap.String("appid", a.appid))
			return h.success(c)
		}
		msg = outer
	}
	ctx := c.UserContext()
	// [U] Whether WeChat's retries of a mini program push reuse timestamp
	// and nonce: either way a retry after a 503 is handled (the claim is
	// released) and one after a "success" is not.
	request := "req\x00" + a.appid + "\x00" + ts + "\x00" + nonce + "\x00" + strings.ToLower(sig)
	first, release := h.claim(ctx, request)
	if !first {
		h.log.Info("push ignored: this request was handled already", zap.String("appid", a.appid))
		return h.success(c)
	}
	if err := h.handle(ctx, a, msg); err != nil {
		release()
		return err
	}
	return h.success(c)
}

// claim marks key as handled; first is false when it was already. A
// store that does not answer does not stop the work (every action is
// idempotent): the push is handled, maybe twice.
func (h *Handlers) claim(ctx context.Context, key string) (first bool, release func()) {
	ok, err := h.seen.Claim(ctx, key, seenTTL)
	if err != nil {
		h.log.Warn("cannot tell whether a push was seen; handling it", zap.Error(err))
		return true, func() {}
	}
	return ok, func() {
		if err := h.seen.Release(context.WithoutCancel(ctx), key); err != nil {
			h.log.Warn("cannot forget a failed push; WeChat's retry will be ignored", zap.Error(err))
		}
	}
}

func (h *Handlers) success(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	return c.SendString(successBody)
}

// handle acts on one message; errors mean "try again" (503).
func (h *Handlers) handle(ctx context.Context, a app, m Message) error {
	log := h.log.With(zap.String("appid", a.appid), zap.String("event", m.Event))
	switch {
	case !strings.EqualFold(m.MsgType, "event"):
		log.Debug("push ignored: not an event", zap.String("msg_type", m.MsgType))
		return nil
	case m.Event != EventUserInfoModified && m.Event != EventAuthorizationRevoke && m.Event != EventAuthorizationCancel:
		log.Debug("push ignored: an event this service does not act on")
		return nil
	case m.OpenID == "":
		log.Warn("user-authorization event without OpenID ignored")
		return nil
	case m.AppID != "" && m.AppID != a.appid:
		log.Warn("user-authorization event for another app ignored", zap.String("event_appid", m.AppID))
		return nil
	case len(m.OpenID) > 128:
		log.Warn("user-authorization event with an impossible OpenID ignored")
		return nil
	}
	event := "evt\x00" + a.appid + "\x00" + m.FromUserName + "\x00" + strconv.FormatInt(m.CreateTime, 10) + "\x00" +
		m.Event + "\x00" + m.OpenID + "\x00" + m.RawRevokeInfo
	first, release := h.claim(ctx, event)
	if !first {
		log.Info("push ignored: this event was handled already")
		return nil
	}
	err := h.act(ctx, log, user.IdentityKey{Provider: config.PlatformWeChat, AppID: a.appid, OpenID: m.OpenID}, m)
	if errors.Is(err, user.ErrNotFound) {
		log.Info("user-authorization event for no known user ignored")
		return nil
	}
	if err != nil {
		release()
		log.Error("user-authorization event not handled; WeChat will retry", zap.Error(err))
		return httpserver.NewError(fiber.StatusServiceUnavailable, "service_unavailable", "the push cannot be handled now; retry")
	}
	return nil
}

// act does what the event asks for the identity key names.
func (h *Handlers) act(ctx context.Context, log *zap.Logger, key user.IdentityKey, m Message) error {
	cause := causePrefix + m.Event
	switch m.Event {
	case EventAuthorizationCancel:
		r, err := h.users.RemoveIdentity(ctx, key, user.CausePlatform)
		if err != nil {
			return err
		}
		log.Info("identity erased: the user cancelled the WeChat account", zap.Int("user_id", r.UserID), zap.Bool("user_deleted", r.UserDeleted))
		return nil
	case EventUserInfoModified:
		return h.clear(ctx, log, key, user.ProfileClear{Fields: []user.Field{user.FieldNickname, user.FieldAvatar}, Cause: cause})
	default: // EventAuthorizationRevoke
		return h.clear(ctx, log, key, user.ProfileClear{Fields: RevokedFields(m.RevokeInfo), Cause: cause, RevokeInfo: m.RevokeInfo})
	}
}

func (h *Handlers) clear(ctx context.Context, log *zap.Logger, key user.IdentityKey, pc user.ProfileClear) error {
	u, err := h.users.UserOf(ctx, key)
	if err != nil {
		return err
	}
	if _, err := h.users.ClearProfile(ctx, u.ID, pc); err != nil {
		return err
	}
	log.Info("profile erased as WeChat asked", zap.Int("user_id", u.ID), zap.Any("fields", pc.Fields), zap.Ints("revoke_info", pc.RevokeInfo))
	return nil
}

// RevokedFields maps WeChat's RevokeInfo codes to the profile fields
// wxlogin keeps: 6 (mini program) and 205 (service account H5) nickname and
// avatar, 19 nickname (nickname keyboard), 20 avatar (avatar component), 8
// phone number, 301 (mobile app) everything. Other codes name data wxlogin
// does not keep.
func RevokedFields(codes []int) []user.Field {
	var out []user.Field
	add := func(fs ...user.Field) {
		for _, f := range fs {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	for _, c := range codes {
		switch c {
		case 6, 205:
			add(user.FieldNickname, user.FieldAvatar)
		case 19:
			add(user.FieldNickname)
		case 20:
			add(user.FieldAvatar)
		case 8:
			add(user.FieldPhone)
		case 301:
			add(user.FieldNickname, user.FieldAvatar, user.FieldPhone)
		}
	}
	return out
}
