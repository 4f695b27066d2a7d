package auth

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/token"
)

// MiddlewareConfig configures [Middleware].
type MiddlewareConfig struct {
	// Strategy verifies tokens. Required.
	Strategy token.Strategy
	// Next, when it returns true, skips the check for that request.
	Next func(c *fiber.Ctx) bool
}

const localPrincipal = "wxlogin.principal"

// MaxTokenLen bounds the Authorization header's token.
const MaxTokenLen = 4096

// Middleware verifies "Authorization: Bearer <token>" and stores the
// Principal for the handlers ([PrincipalOf]). It never reads a token from
// the query string or a cookie: those end up in logs and Referer headers.
// A missing, malformed, tampered, expired or revoked token is answered 401
// "unauthenticated" with the reason (token.Reason) in the error body; a
// token store that does not answer is a 503, never a 401.
func Middleware(cfg MiddlewareConfig) fiber.Handler {
	if cfg.Strategy == nil {
		panic("auth: MiddlewareConfig.Strategy is required")
	}
	return func(c *fiber.Ctx) error {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		raw, err := bearer(c.Get(fiber.HeaderAuthorization))
		if err != nil {
			return err
		}
		p, err := cfg.Strategy.Verify(c.UserContext(), raw)
		if err != nil {
			return err
		}
		c.Locals(localPrincipal, p)
		return c.Next()
	}
}

// bearer extracts the token. The returned string is a copy: Fiber reuses
// header buffers after the request, and strategies may cache the token.
func bearer(header string) (string, error) {
	if header == "" {
		return "", unauthenticated("missing Authorization: Bearer <token> header")
	}
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated("the Authorization header must be \"Bearer <token>\"")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || len(tok) > MaxTokenLen || !token68(tok) {
		return "", unauthenticated("the bearer token is malformed")
	}
	return strings.Clone(tok), nil
}

// token68 reports whether s uses only the characters RFC 6750 allows.
func token68(s string) bool {
	for i := 0; i < len(s); i++ {
		if !token68Chars[s[i]] {
			return false
		}
	}
	return true
}

// token68Chars is the RFC 6750 b64token alphabet; a table because this
// runs on every request.
var token68Chars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/=" {
		t[c] = true
	}
	return t
}()

func unauthenticated(msg string) error {
	e := httpserver.NewError(fiber.StatusUnauthorized, "unauthenticated", msg)
	e.Reason = string(token.ReasonInvalid)
	return e
}

// PrincipalOf returns who the request's token says the caller is; ok is
// false on routes the middleware does not protect.
func PrincipalOf(c *fiber.Ctx) (token.Principal, bool) {
	p, ok := c.Locals(localPrincipal).(token.Principal)
	return p, ok
}

// Guard is the fx-provided middleware: business modules take a *Guard and
// put Guard.Handler() in front of their routes.
type Guard struct {
	handler fiber.Handler
}

// NewGuard returns a Guard verifying with s.
func NewGuard(s token.Strategy) *Guard {
	return &Guard{handler: Middleware(MiddlewareConfig{Strategy: s})}
}

// Handler is the middleware.
func (g *Guard) Handler() fiber.Handler { return g.handler }
