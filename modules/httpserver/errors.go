package httpserver

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/modules/user"
)

// Body is the JSON error object.
type Body struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is an error with its HTTP answer. Handlers return it for errors of
// their own; the error handler maps the modules' typed errors to it.
type Error struct {
	Status  int
	Code    string
	Message string
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
		case e.Status >= 500:
			l.Error("request failed", zap.String("code", e.Code), zap.Error(err))
		case e.Err != nil:
			l.Info("request refused", zap.String("code", e.Code), zap.Error(e.Err))
		}
		if e.Status == fiber.StatusUnauthorized {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="wxlogin"`)
		}
		return c.Status(e.Status).JSON(fiber.Map{"error": Body{Code: e.Code, Message: e.Message}})
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
	mapUser,
}

func mapUser(err error) *Error {
	var ve *user.ValidationError
	switch {
	case errors.As(err, &ve):
		return &Error{Status: fiber.StatusBadRequest, Code: "invalid_" + ve.Field, Message: ve.Error()}
	case errors.Is(err, user.ErrNotFound):
		return &Error{Status: fiber.StatusUnauthorized, Code: "unauthenticated", Message: "the token's user no longer exists"}
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
