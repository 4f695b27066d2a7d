// Package profile completes a logged-in user's profile the ways a mini
// program can today: the phone-number button (its code, or the legacy
// encrypted data) and the encrypted user info (wx.getUserInfo /
// wx.getUserProfile). The nickname input and the chooseAvatar upload are
// PATCH /api/v1/me and modules/avatar.
//
// Routes (bearer): POST /api/v1/me/phone and POST /api/v1/me/userinfo.
// Encrypted data is decrypted with the session_key stored at the user's
// last login and accepted only when its watermark names our appid.
//
// An application may replace the WeChat side with fx.Decorate on
// wechat.Client (the phone-number API) and the storage with fx.Decorate on
// user.Store.
package profile

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

// Module registers the profile routes.
var Module = fx.Module("profile",
	fx.Provide(
		fx.Annotate(func(c wechat.Client) PhoneClient { return c }),
		NewHandlers,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
	),
)

// PhoneClient is the part of the WeChat client this package needs.
type PhoneClient interface {
	AppID() string
	GetPhoneNumber(ctx context.Context, code string) (wechat.PhoneInfo, error)
}

// Handlers serve the profile routes.
type Handlers struct {
	wechat PhoneClient
	users  user.Store
	guard  *auth.Guard
}

// NewHandlers returns the profile handlers.
func NewHandlers(wc PhoneClient, users user.Store, guard *auth.Guard) *Handlers {
	return &Handlers{wechat: wc, users: users, guard: guard}
}

// Register adds POST /api/v1/me/phone and POST /api/v1/me/userinfo.
func (h *Handlers) Register(app *fiber.App) {
	app.Post("/api/v1/me/phone", h.guard.Handler(), h.Phone)
	app.Post("/api/v1/me/userinfo", h.guard.Handler(), h.UserInfo)
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
}

// Phone stores the caller's phone number, from the button's code
// (getuserphonenumber, preferred) or from its legacy encrypted data.
func (h *Handlers) Phone(c *fiber.Ctx) error {
	var req phoneRequest
	if err := httpserver.DecodeJSON(c, &req); err != nil {
		return err
	}
	p, _ := auth.PrincipalOf(c)
	ctx := c.UserContext()
	hasCode := req.Code != nil && *req.Code != ""
	hasData := req.EncryptedData != nil || req.IV != nil
	var phone user.Phone
	switch {
	case hasCode && hasData:
		return httpserver.BadRequest("invalid_request", `send either "code" or "encrypted_data" with "iv", not both`)
	case hasCode:
		if len(*req.Code) > maxCodeLen || strings.ContainsAny(*req.Code, " \t\r\n") {
			return httpserver.NewError(fiber.StatusUnauthorized, "invalid_code", "the code is not a getPhoneNumber code; tap the button again")
		}
		info, err := h.wechat.GetPhoneNumber(ctx, *req.Code)
		if err != nil {
			return err
		}
		if info.Watermark.AppID != "" && info.Watermark.AppID != h.wechat.AppID() {
			return wxcrypto.ErrAppIDMismatch
		}
		phone = user.Phone{Number: info.PhoneNumber, PureNumber: info.PurePhoneNumber, CountryCode: info.CountryCode}
	case hasData:
		ed, iv, err := encrypted(req.EncryptedData, req.IV)
		if err != nil {
			return err
		}
		key, err := h.sessionKey(ctx, p.UserID)
		if err != nil {
			return err
		}
		info, err := wxcrypto.DecryptPhone(key, ed, iv, h.wechat.AppID())
		if err != nil {
			return err
		}
		phone = user.Phone{Number: info.PhoneNumber, PureNumber: info.PurePhoneNumber, CountryCode: string(info.CountryCode)}
	default:
		return httpserver.BadRequest("invalid_request", `send "code" from the getPhoneNumber button, or its "encrypted_data" and "iv"`)
	}
	u, err := h.users.SetPhone(ctx, p.UserID, phone)
	if err != nil {
		return err
	}
	return c.JSON(user.View(u))
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

// UserInfo decrypts wx.getUserInfo/getUserProfile data with the stored
// session_key and stores unionid, nickname and avatar, ignoring WeChat's
// anonymous placeholder profile.
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
	key, err := h.sessionKey(ctx, p.UserID)
	if err != nil {
		return err
	}
	if hasRaw && !wxcrypto.VerifyRawData(*req.RawData, *req.Signature, key) {
		// A signature that does not match the stored key is, like
		// undecryptable data, most often a newer wx.login on the device.
		return httpserver.NewError(fiber.StatusConflict, "session_key_stale",
			"the signature does not match the current session key: call wx.login, log in again, then send the data again")
	}
	info, err := wxcrypto.DecryptUserInfo(key, ed, iv, h.wechat.AppID())
	if err != nil {
		return err
	}
	if info.OpenID != "" && info.OpenID != p.OpenID {
		return httpserver.NewError(fiber.StatusForbidden, "openid_mismatch", "the data belongs to another user")
	}
	var up user.ProfileUpdate
	anonymous := info.NickName == Anonymous
	if !anonymous && strings.TrimSpace(info.NickName) != "" {
		up.Nickname = &info.NickName
	}
	if !anonymous && info.AvatarURL != "" && !strings.HasSuffix(info.AvatarURL, anonymousAvatar) {
		up.AvatarURL = &info.AvatarURL
	}
	if info.UnionID != "" {
		up.UnionID = &info.UnionID
	}
	u, err := h.users.UpdateProfile(ctx, p.UserID, up)
	if err != nil {
		return err
	}
	return c.JSON(user.View(u))
}

func (h *Handlers) sessionKey(ctx context.Context, userID int) (string, error) {
	u, err := h.users.Get(ctx, userID)
	if err != nil {
		return "", err
	}
	if u.SessionKey == "" {
		return "", wxcrypto.ErrStaleSessionKey
	}
	return u.SessionKey, nil
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
