// Package profile completes a logged-in user's profile the ways a mini
// program can today: the phone-number button (its code, or the legacy
// encrypted data) and the encrypted user info (wx.getUserInfo /
// wx.getUserProfile). The nickname input and the chooseAvatar upload are
// PATCH /api/v1/me and modules/avatar.
//
// Routes (bearer): POST /api/v1/me/phone and POST /api/v1/me/userinfo, both
// limited per user by ratelimit.Limits.OpenData when the graph holds the
// limits.
// Encrypted data is decrypted with the session_key of the identity the
// caller logged in with (each identity keeps its own) and accepted only
// when its watermark names that identity's app. Phone numbers come from the
// app's platform through provider.PhoneProvider; a unionid found in user
// info is linked to the caller's identity, which may merge two users into
// one (see modules/user).
//
// An application may replace a platform's side by decorating its provider
// (for WeChat, *wechat.Clients) and the storage by decorating user.Store.
package profile

import (
	"context"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/ratelimit"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Module registers the profile routes.
var Module = fx.Module("profile",
	fx.Provide(
		NewHandlers,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
	),
)

// Handlers serve the profile routes.
type Handlers struct {
	apps   *provider.Registry
	users  user.Store
	guard  *auth.Guard
	limits ratelimit.Limits
}

// Params are NewHandlers' dependencies.
type Params struct {
	fx.In
	Apps  *provider.Registry
	Users user.Store
	Guard *auth.Guard
	// Limits limit the open-data calls per user; optional.
	Limits *ratelimit.Limits `optional:"true"`
}

// NewHandlers returns the profile handlers.
func NewHandlers(p Params) *Handlers {
	h := &Handlers{apps: p.Apps, users: p.Users, guard: p.Guard}
	if p.Limits != nil {
		h.limits = *p.Limits
	}
	return h
}

// Register adds POST /api/v1/me/phone and POST /api/v1/me/userinfo.
func (h *Handlers) Register(app *fiber.App) {
	perUser := ratelimit.New(ratelimit.Config{
		Limiter: h.limits.OpenData,
		Key:     func(c *fiber.Ctx) string { p, _ := auth.PrincipalOf(c); return strconv.Itoa(p.UserID) },
		Message: "too many phone-number or user-info requests; retry later",
	})
	app.Post("/api/v1/me/phone", h.guard.Handler(), perUser, h.Phone)
	app.Post("/api/v1/me/userinfo", h.guard.Handler(), perUser, h.UserInfo)
}

// Limits on client input, far above what WeChat produces.
const (
	maxCodeLen          = 256
	maxEncryptedDataLen = 64 << 10
	maxRawDataLen       = 16 << 10
)

type phoneRequest struct {
	Code          *string `json:"code"`
	EncryptedData *string `json:"encrypted_data"`
	IV            *string `json:"iv"`
	// Response is Alipay's my.getPhoneNumber response string.
	Response *string `json:"response"`
}

// Phone stores the caller's phone number, from the button's code
// (preferred) or from its legacy encrypted data.
func (h *Handlers) Phone(c *fiber.Ctx) error {
	var req phoneRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	p, _ := auth.PrincipalOf(c)
	ctx := c.UserContext()
	hasCode := req.Code != nil && *req.Code != ""
	hasData := req.EncryptedData != nil || req.IV != nil
	hasResponse := req.Response != nil && *req.Response != ""
	app, phones, err := h.phoneProvider(p.AppID)
	if err != nil {
		return err
	}
	var preq provider.PhoneRequest
	switch {
	case hasResponse && (hasCode || hasData):
		return httpserver.BadRequest("invalid_request", `send "response" (Alipay) alone`)
	case hasResponse:
		if len(*req.Response) > maxEncryptedDataLen {
			return httpserver.BadRequest("invalid_encrypted_data", "the response is too long")
		}
		preq.Response, preq.OpenID = *req.Response, p.OpenID
	case hasCode && hasData:
		return httpserver.BadRequest("invalid_request", `send either "code" or "encrypted_data" with "iv", not both`)
	case hasCode:
		if len(*req.Code) > maxCodeLen || strings.ContainsAny(*req.Code, " \t\r\n") {
			return httpserver.NewError(fiber.StatusUnauthorized, "invalid_code", "the code is not a getPhoneNumber code; tap the button again")
		}
		preq.Code = *req.Code
	case hasData:
		ed, iv, err := encrypted(req.EncryptedData, req.IV)
		if err != nil {
			return err
		}
		id, err := h.users.Identity(ctx, p.UserID, auth.IdentityOf(p))
		if err != nil {
			return err
		}
		preq.EncryptedData, preq.IV, preq.SessionKey, preq.OpenID = ed, iv, provider.Secret(id.SessionKey), p.OpenID
	default:
		return httpserver.BadRequest("invalid_request", `send "code" from the getPhoneNumber button, or its "encrypted_data" and "iv" (Alipay: my.getPhoneNumber's "response")`)
	}
	info, err := phones.Phone(ctx, app, preq)
	if err != nil {
		return err
	}
	u, err := h.users.SetPhone(ctx, p.UserID, user.Phone{Number: info.Number, PureNumber: info.PureNumber, CountryCode: info.CountryCode})
	if err != nil {
		return err
	}
	return c.JSON(user.View(u, auth.IdentityOf(p)))
}

// phoneProvider finds the caller's app and its platform's phone numbers.
func (h *Handlers) phoneProvider(appid string) (config.App, provider.PhoneProvider, error) {
	app, prov, err := h.apps.Resolve(appid)
	if err != nil {
		return config.App{}, nil, httpserver.BadRequest("unknown_app", "the app this token was issued for is no longer served")
	}
	phones, ok := prov.(provider.PhoneProvider)
	if !ok {
		return config.App{}, nil, unsupported(app.Platform + " does not hand out phone numbers")
	}
	return app, phones, nil
}

func unsupported(msg string) error {
	return httpserver.BadRequest("not_supported", msg)
}

type userInfoRequest struct {
	EncryptedData *string `json:"encrypted_data"`
	IV            *string `json:"iv"`
	RawData       *string `json:"raw_data"`
	Signature     *string `json:"signature"`
}

// Anonymous is the nickname WeChat has returned instead of the real one
// since 2021 (getUserInfo) and 2022 (getUserProfile).
const Anonymous = "微信用户"

// anonymousAvatar is the path of the grey avatar that comes with it.
const anonymousAvatar = "/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"

// UserInfo decrypts wx.getUserInfo/getUserProfile data with the session
// key of the caller's identity and stores nickname and avatar (ignoring
// WeChat's anonymous placeholder profile) and the unionid, which may reveal
// that the caller is a user this service already knows: then the two are
// merged and the answer is the surviving user.
func (h *Handlers) UserInfo(c *fiber.Ctx) error {
	var req userInfoRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	ed, iv, err := encrypted(req.EncryptedData, req.IV)
	if err != nil {
		return err
	}
	hasRaw, hasSig := req.RawData != nil && *req.RawData != "", req.Signature != nil && *req.Signature != ""
	if hasRaw != hasSig {
		return httpserver.BadRequest("invalid_request", `"raw_data" and "signature" go together`)
	}
	if hasRaw && len(*req.RawData) > maxRawDataLen {
		return httpserver.BadRequest("invalid_request", `"raw_data" is too long`)
	}
	p, _ := auth.PrincipalOf(c)
	ctx := c.UserContext()
	id, err := h.wechatMiniIdentity(ctx, p)
	if err != nil {
		return err
	}
	key := id.SessionKey
	if key == "" {
		return wxcrypto.ErrStaleSessionKey
	}
	if hasRaw && !wxcrypto.VerifyRawData(*req.RawData, *req.Signature, key) {
		// A signature that does not match the stored key is, like
		// undecryptable data, most often a newer wx.login on the device.
		return httpserver.NewError(fiber.StatusConflict, "session_key_stale",
			"the signature does not match the current session key: call wx.login, log in again, then send the data again")
	}
	info, err := wxcrypto.DecryptUserInfo(key, ed, iv, p.AppID)
	if err != nil {
		return err
	}
	if info.OpenID != "" && info.OpenID != p.OpenID {
		return httpserver.NewError(fiber.StatusForbidden, "openid_mismatch", "the data belongs to another user")
	}
	userID := p.UserID
	if info.UnionID != "" {
		res, err := h.users.LinkUnionID(ctx, p.UserID, auth.IdentityOf(p), info.UnionID)
		if err != nil {
			return err
		}
		userID = res.User.ID
	}
	var up user.ProfileUpdate
	anonymous := info.NickName == Anonymous
	// A platform nickname the profile rules refuse (blank, invisible
	// formatting characters) is ignored rather than failing the call.
	if _, err := user.ValidateNickname(info.NickName); !anonymous && err == nil {
		up.Nickname = &info.NickName
	}
	if !anonymous && info.AvatarURL != "" && !strings.HasSuffix(info.AvatarURL, anonymousAvatar) {
		up.AvatarURL = &info.AvatarURL
	}
	var u *ent.User
	if up.Nickname != nil || up.AvatarURL != nil {
		u, err = h.users.UpdateProfile(ctx, userID, up)
	} else {
		u, err = h.users.Get(ctx, userID)
	}
	if err != nil {
		return err
	}
	return c.JSON(user.View(u, auth.IdentityOf(p)))
}

// wechatMiniIdentity returns the caller's identity, which must be a WeChat
// mini program's: user info is theirs only.
func (h *Handlers) wechatMiniIdentity(ctx context.Context, p token.Principal) (*ent.Identity, error) {
	id, err := h.users.Identity(ctx, p.UserID, auth.IdentityOf(p))
	if err != nil {
		return nil, err
	}
	if id.Provider != config.PlatformWeChat || id.Kind != config.KindMiniProgram {
		return nil, unsupported("user info is decrypted for WeChat mini programs only")
	}
	return id, nil
}

// encrypted checks both fields are present strings of sane size; their
// content is wxcrypto's to judge.
func encrypted(data, iv *string) (string, string, error) {
	if data == nil || *data == "" || iv == nil || *iv == "" {
		return "", "", httpserver.BadRequest("invalid_request", `send "encrypted_data" and "iv" as the device received them (JSON strings)`)
	}
	if len(*data) > maxEncryptedDataLen || len(*iv) > 64 {
		return "", "", httpserver.BadRequest("invalid_encrypted_data", "the encrypted data is too long")
	}
	return *data, *iv, nil
}
