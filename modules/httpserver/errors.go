package httpserver

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

// Body is the JSON error object.
type Body struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Reason tells why a token stopped working (token.Reason: expired,
	// logged_out, revoked, …) on 401 unauthenticated and, when known,
	// invalid_refresh_token.
	Reason string `json:"reason,omitempty"`
}

// Error is an error with its HTTP answer. Handlers return it for errors of
// their own; the error handler maps the modules' typed errors to it.
type Error struct {
	Status  int
	Code    string
	Message string
	// Reason is Body.Reason.
	Reason string
	// RetryAfter is the Retry-After of a 503, in seconds (1 when unset).
	RetryAfter int
	// Err is the cause, logged for 5xx answers and never shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// NewError returns an *Error.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// BadRequest is a 400 with the given code.
func BadRequest(code, message string) *Error { return NewError(fiber.StatusBadRequest, code, message) }

// ErrorHandler renders every error as {"error": {...}} with the status of
// [Map], and logs server-side failures with the request id.
func ErrorHandler(logger *zap.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		e := Map(err)
		l := Logger(c)
		if _, ok := c.Locals(localLogger).(*zap.Logger); !ok {
			l = logger
		}
		switch {
		case e.Code == "wechat_misconfigured":
			l.Error("WeChat refused our credentials or setup: check APP_WECHAT_APPID, APP_WECHAT_SECRET, "+
				"the server IP whitelist and the AppSecret's state in the mini program admin console",
				zap.String("code", e.Code), zap.Error(err))
		case e.Status >= 500:
			l.Error("request failed", zap.String("code", e.Code), zap.Error(err))
		case e.Err != nil:
			l.Info("request refused", zap.String("code", e.Code), zap.Error(e.Err))
		}
		if e.Status == fiber.StatusUnauthorized {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="wxlogin"`)
		}
		if e.Status == fiber.StatusServiceUnavailable {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(e.RetryAfter, 1)))
		}
		return c.Status(e.Status).JSON(fiber.Map{"error": Body{Code: e.Code, Message: e.Message, Reason: e.Reason}})
	}
}

// Map turns any error into its HTTP answer. It is the one place where the
// modules' typed errors meet HTTP status codes.
func Map(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, m := range mappers {
		if e := m(err); e != nil {
			if e.Err == nil {
				e.Err = err
			}
			return e
		}
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return &Error{Status: fe.Code, Code: codeForStatus(fe.Code), Message: fiberMessage(fe)}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "timeout", Message: "the request took too long; try again", Err: err}
	}
	return &Error{Status: fiber.StatusInternalServerError, Code: "internal_error", Message: "internal error", Err: err}
}

// mappers map the modules' errors; each returns nil for errors it does not know.
var mappers = []func(error) *Error{
	mapToken,
	mapUser,
	mapOpenData,
	mapWeChat,
}

func mapToken(err error) *Error {
	switch {
	case errors.Is(err, token.ErrUnavailable):
		// The store did not answer: no verdict on the token, never a 401.
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "service_unavailable", Message: "the service cannot check tokens right now; retry shortly", RetryAfter: 1}
	case errors.Is(err, token.ErrUnauthenticated):
		reason := token.ReasonOf(err)
		return &Error{Status: fiber.StatusUnauthorized, Code: "unauthenticated", Message: unauthenticatedMessages[reason], Reason: string(reason)}
	case errors.Is(err, token.ErrRefreshReused):
		return &Error{Status: fiber.StatusUnauthorized, Code: "refresh_token_reused", Message: "this refresh token was already used; the session has been revoked for safety: log in again"}
	case errors.Is(err, token.ErrInvalidRefresh):
		return &Error{Status: fiber.StatusUnauthorized, Code: "invalid_refresh_token", Message: "the refresh token is unknown, expired or revoked; log in again", Reason: string(token.ReasonOf(err))}
	case errors.Is(err, token.ErrSessionNotFound):
		return &Error{Status: fiber.StatusNotFound, Code: "not_found", Message: "no such session"}
	}
	return nil
}

// unauthenticatedMessages say what a client should do for each reason.
var unauthenticatedMessages = map[token.Reason]string{
	token.ReasonExpired:      "the access token expired; refresh it",
	token.ReasonLoggedOut:    "this session was logged out; log in again",
	token.ReasonReplaced:     "a newer login on the same kind of client ended this session; log in again",
	token.ReasonSessionLimit: "a newer login ended this session (too many sessions); log in again",
	token.ReasonRevoked:      "this session was ended; log in again",
	token.ReasonUserBanned:   "this account is banned",
	token.ReasonUserDeleted:  "this account no longer exists",
	token.ReasonInvalid:      "the access token is missing, malformed or unknown; log in again",
}

// mapOpenData maps decryption failures of data the device handed over.
func mapOpenData(err error) *Error {
	switch {
	case errors.Is(err, wxcrypto.ErrStaleSessionKey):
		return &Error{Status: fiber.StatusConflict, Code: "session_key_stale", Message: "the data does not decrypt with the current session key: " +
			"the device called wx.login after producing it. Call wx.login, log in again with the new code, then send the data again"}
	case errors.Is(err, wxcrypto.ErrAppIDMismatch):
		return &Error{Status: fiber.StatusForbidden, Code: "watermark_mismatch", Message: "the data was produced for another mini program"}
	case errors.Is(err, wxcrypto.ErrMalformed):
		// The wxcrypto texts are written to be shown and hold no key material.
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_encrypted_data", Message: publicMessage(err)}
	case errors.Is(err, wxcrypto.ErrSessionKey):
		return &Error{Status: fiber.StatusInternalServerError, Code: "internal_error", Message: "internal error"}
	}
	return nil
}

func publicMessage(err error) string {
	var ce *wxcrypto.Error
	if errors.As(err, &ce) {
		return ce.Error()
	}
	return err.Error()
}

// mapWeChat maps WeChat's answers. Misconfiguration is the operator's
// problem, so the client gets a generic 500 and the log line says what to fix.
func mapWeChat(err error) *Error {
	var we *wechat.Error
	isWeChat := errors.As(err, &we)
	if !isWeChat && !errors.Is(err, wechat.ErrUnavailable) {
		return nil
	}
	switch wechat.KindOf(err) {
	case wechat.KindInvalidCode:
		return &Error{Status: fiber.StatusUnauthorized, Code: "invalid_code", Message: "the code is invalid, expired or already used; call wx.login (or the button) again for a new one"}
	case wechat.KindRateLimited:
		return &Error{Status: fiber.StatusTooManyRequests, Code: "rate_limited", Message: "WeChat's rate limit was reached; retry in a minute"}
	case wechat.KindBlocked:
		return &Error{Status: fiber.StatusForbidden, Code: "user_blocked", Message: "WeChat refused this user (high-risk account)"}
	case wechat.KindUnavailable:
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "wechat_unavailable", Message: "WeChat is unavailable; retry shortly"}
	case wechat.KindMisconfigured:
		return &Error{Status: fiber.StatusInternalServerError, Code: "wechat_misconfigured", Message: "the server's WeChat configuration is wrong; the operator has been told"}
	case wechat.KindAccessToken:
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "wechat_unavailable", Message: "WeChat refused the server's access token; retry shortly"}
	case wechat.KindSessionKey:
		return &Error{Status: fiber.StatusConflict, Code: "session_key_stale", Message: "WeChat no longer accepts the stored session key; call wx.login and log in again"}
	}
	return &Error{Status: fiber.StatusBadGateway, Code: "wechat_error", Message: "WeChat refused the request"}
}

func mapUser(err error) *Error {
	var ve *user.ValidationError
	switch {
	case errors.As(err, &ve):
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_" + ve.Field, Message: ve.Error()}
	case errors.Is(err, user.ErrNotFound):
		return &Error{Status: fiber.StatusUnauthorized, Code: "unauthenticated", Message: "the token's user no longer exists", Reason: string(token.ReasonUserDeleted)}
	}
	return nil
}

func codeForStatus(status int) string {
	switch status {
	case fiber.StatusNotFound:
		return "not_found"
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "body_too_large"
	case fiber.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case fiber.StatusTooManyRequests:
		return "rate_limited"
	case fiber.StatusBadRequest:
		return "bad_request"
	}
	if status >= 500 {
		return "internal_error"
	}
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

func fiberMessage(fe *fiber.Error) string {
	if fe.Code >= 500 {
		return "internal error"
	}
	if fe.Code == fiber.StatusRequestEntityTooLarge {
		return "the request body is too large"
	}
	return fe.Message
}
