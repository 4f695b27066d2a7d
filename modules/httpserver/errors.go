package httpserver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Body is the JSON error object.
type Body struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Reason tells why a token stopped working (token.Reason: expired,
	// logged_out, revoked, …) on 401 unauthenticated and, when known,
	// invalid_refresh_token.
	Reason string `json:"reason,omitempty"`
	// Until is when a ban ends (403 user_banned; absent for a ban without end).
	Until *time.Time `json:"until,omitempty"`
}

// Error is an error with its HTTP answer. Handlers return it for errors of
// their own; the error handler maps the modules' typed errors to it.
type Error struct {
	Status  int
	Code    string
	Message string
	// Reason is Body.Reason.
	Reason string
	// Until is Body.Until.
	Until *time.Time
	// RetryAfter is sent as Retry-After (seconds): when a client may try
	// again after a 429 or 503 (every 503 gets one: 1 when unset).
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

// Unavailable is the answer when a dependency (the database, Redis, a
// storage) does not answer: 503 service_unavailable with Retry-After, never
// a 500 and never a verdict on the caller. cause is logged, never shown.
func Unavailable(message string, cause error) *Error {
	return &Error{Status: fiber.StatusServiceUnavailable, Code: "service_unavailable", Message: message, RetryAfter: 1, Err: cause}
}

// RateLimited is the answer of a limit that was reached: 429 rate_limited
// with Retry-After (whole seconds, at least 1).
func RateLimited(message string, retryAfter time.Duration) *Error {
	secs := int(math.Ceil(retryAfter.Seconds()))
	return &Error{Status: fiber.StatusTooManyRequests, Code: "rate_limited", Message: message, RetryAfter: max(secs, 1)}
}

// ErrorHandler renders every error as {"error": {...}} with the status of
// [Map], and logs server-side failures with the request id.
func ErrorHandler(logger *zap.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		e := Map(err)
		c.Locals(localErrorCode, e.Code)
		c.Locals(localError, err)
		l := Logger(c)
		if _, ok := c.Locals(localLogger).(*zap.Logger); !ok {
			l = logger
		}
		switch {
		case strings.HasSuffix(e.Code, "_misconfigured"):
			l.Error("the platform refused our credentials or setup: check the app's appid and secret in APP_APPS "+
				"(or APP_WECHAT_APPID/APP_WECHAT_SECRET), the server IP whitelist and the secret's state in the platform's admin console",
				zap.String("code", e.Code), zap.Error(err))
		case e.Status >= 500:
			l.Error("request failed", zap.String("code", e.Code), zap.Error(err))
		case e.Err != nil:
			l.Info("request refused", zap.String("code", e.Code), zap.Error(e.Err))
		}
		// Answers fasthttp could not parse never went through the
		// middleware that sets these.
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		if len(c.Response().Header.Peek(fiber.HeaderCacheControl)) == 0 {
			c.Set(fiber.HeaderCacheControl, "no-store")
		}
		if e.Status == fiber.StatusUnauthorized {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="wxlogin"`)
		}
		if e.RetryAfter > 0 || e.Status == fiber.StatusServiceUnavailable {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(e.RetryAfter, 1)))
		}
		return c.Status(e.Status).JSON(fiber.Map{"error": Body{Code: e.Code, Message: e.Message, Reason: e.Reason, Until: e.Until}})
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
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "timeout", Message: "the request took too long; try again", Err: err, RetryAfter: 1}
	}
	if dependencyDown(err) {
		// A module that let a connection failure through untyped: still
		// an outage, not a bug of ours.
		return Unavailable("a service this one depends on does not answer; retry shortly", err)
	}
	return &Error{Status: fiber.StatusInternalServerError, Code: "internal_error", Message: "internal error", Err: err}
}

// mappers map the modules' errors; each returns nil for errors it does not know.
var mappers = []func(error) *Error{
	mapToken,
	mapUser,
	mapOpenData,
	mapProvider,
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

// mapProvider maps what a platform (WeChat, QQ, …) answered, the same way
// for every platform. Misconfiguration is the operator's problem, so the
// client gets a generic 500 and the log line says what to fix.
func mapProvider(err error) *Error {
	if errors.Is(err, provider.ErrUnknownApp) {
		return &Error{Status: fiber.StatusBadRequest, Code: "unknown_app", Message: "this service does not serve that app"}
	}
	platform, kind, ok := provider.Classify(err)
	if !ok {
		return nil
	}
	name := platformName(platform)
	switch kind {
	case provider.KindInvalidCode:
		return &Error{Status: fiber.StatusUnauthorized, Code: "invalid_code", Message: "the code is invalid, expired or already used; call the login (or the button) again for a new one"}
	case provider.KindRateLimited:
		return &Error{Status: fiber.StatusTooManyRequests, Code: "rate_limited", Message: name + "'s rate limit was reached; retry in a minute", RetryAfter: 60}
	case provider.KindBlocked:
		return &Error{Status: fiber.StatusForbidden, Code: "user_blocked", Message: name + " refused this user (high-risk account)"}
	case provider.KindUnavailable:
		return &Error{Status: fiber.StatusServiceUnavailable, Code: platform + "_unavailable", Message: name + " is unavailable; retry shortly", RetryAfter: 5}
	case provider.KindMisconfigured:
		return &Error{Status: fiber.StatusInternalServerError, Code: platform + "_misconfigured", Message: "the server's " + name + " configuration is wrong; the operator has been told"}
	case provider.KindSessionKey:
		return &Error{Status: fiber.StatusConflict, Code: "session_key_stale", Message: name + " no longer accepts the stored session key; log in again"}
	case provider.KindUnsupported:
		return &Error{Status: fiber.StatusBadRequest, Code: "not_supported", Message: name + " does not offer this for this app"}
	case provider.KindRefused:
		return &Error{Status: fiber.StatusForbidden, Code: "login_refused", Message: name + " refused to vouch for this user or data " +
			"(a WeChat snapshot-page user must tap \"使用完整服务\" and authorize again; Alipay phone data must come signed)"}
	}
	return &Error{Status: fiber.StatusBadGateway, Code: platform + "_error", Message: name + " refused the request"}
}

// platformName is how messages name a platform.
func platformName(platform string) string {
	switch platform {
	case "wechat":
		return "WeChat"
	case "qq":
		return "QQ"
	case "douyin":
		return "Douyin"
	case "alipay":
		return "Alipay"
	}
	return platform
}

// dependencyDown reports whether err is a connection to a dependency that
// failed: refused, reset, timed out, or a pooled connection gone bad.
func dependencyDown(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func mapUser(err error) *Error {
	var ve *user.ValidationError
	var be *user.BannedError
	switch {
	case errors.As(err, &be):
		msg := "this account is banned"
		if be.Until != nil {
			msg += " until " + be.Until.UTC().Format(time.RFC3339)
		}
		return &Error{Status: fiber.StatusForbidden, Code: "user_banned", Message: msg, Until: be.Until}
	case errors.Is(err, user.ErrDeleteAborted):
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "delete_failed", RetryAfter: 5,
			Message: "deleting the account failed; nothing was changed, retry shortly"}
	case errors.Is(err, user.ErrUnavailable):
		return Unavailable("the database does not answer; retry shortly", nil)
	case errors.As(err, &ve):
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_" + ve.Field, Message: ve.Error()}
	case errors.Is(err, user.ErrNotFound):
		return &Error{Status: fiber.StatusUnauthorized, Code: "unauthenticated", Message: "the token's user no longer exists", Reason: string(token.ReasonUserDeleted)}
	case errors.Is(err, user.ErrMergeAborted):
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "merge_failed", RetryAfter: 5,
			Message: "this login found two accounts of one person, and joining them failed; nothing was changed, retry shortly"}
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

// fiberMessage says what went wrong in words of our own: Fiber's and
// fasthttp's messages may quote the request (a header that did not parse
// comes back with the raw request, Authorization included).
func fiberMessage(fe *fiber.Error) string {
	switch {
	case fe.Code >= 500:
		return "internal error"
	case fe.Code == fiber.StatusRequestEntityTooLarge:
		return "the request body is too large"
	case fe.Code == fiber.StatusRequestHeaderFieldsTooLarge:
		return "the request headers are too large"
	case fe.Code == fiber.StatusNotFound:
		return "no such route"
	case fe.Code == fiber.StatusMethodNotAllowed:
		return "this route does not take that method"
	case fe.Code == fiber.StatusRequestTimeout:
		return "the request took too long to arrive"
	case fe.Code == fiber.StatusBadRequest:
		return "the request is malformed"
	}
	return strings.ToLower(http.StatusText(fe.Code))
}
