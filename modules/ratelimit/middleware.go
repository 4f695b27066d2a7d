package ratelimit

import (
	"context"
	"net/netip"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// Config configures [New].
type Config struct {
	// Limiter counts; nil means no limit.
	Limiter Limiter
	// Key names what is counted for a request (default [ByClientIP]); an
	// empty key is not counted.
	Key func(c *fiber.Ctx) string
	// Next, when it returns true, skips the limit for that request.
	Next func(c *fiber.Ctx) bool
	// FailuresOnly counts only requests that failed (Failed decides) and
	// refuses a request when its key's failures used the limit up.
	FailuresOnly bool
	// Failed tells whether a request failed, from the handler's error (or
	// the status it wrote). Default: a 4xx answer other than 429.
	Failed func(c *fiber.Ctx, err error) bool
	// Message is the 429's message (default: "too many requests; retry
	// later").
	Message string
}

// New returns the middleware: a request over the limit is answered 429
// rate_limited with Retry-After and goes no further.
func New(cfg Config) fiber.Handler {
	if cfg.Key == nil {
		cfg.Key = ByClientIP
	}
	if cfg.Failed == nil {
		cfg.Failed = ClientFailed
	}
	return func(c *fiber.Ctx) error {
		if cfg.Limiter == nil || (cfg.Next != nil && cfg.Next(c)) {
			return c.Next()
		}
		key := cfg.Key(c)
		if key == "" {
			return c.Next()
		}
		ctx := c.UserContext()
		if !cfg.FailuresOnly {
			if err := take(ctx, cfg.Limiter, key, cfg.Message, httpserver.Logger(c)); err != nil {
				return err
			}
			return c.Next()
		}
		if err := check(ctx, cfg.Limiter, key, cfg.Message, httpserver.Logger(c)); err != nil {
			return err
		}
		err := c.Next()
		if cfg.Failed(c, err) {
			Record(context.WithoutCancel(ctx), cfg.Limiter, key)
		}
		return err
	}
}

// ClientFailed is the default Config.Failed: the request was answered
// 4xx, 429 excepted (the client's fault, not a limit or an outage).
func ClientFailed(c *fiber.Ctx, err error) bool {
	status := c.Response().StatusCode()
	if err != nil {
		status = httpserver.Map(err).Status
	}
	return status >= 400 && status < 500 && status != fiber.StatusTooManyRequests
}

// ByClientIP is the client's address (httpserver.ClientIP); an IPv6
// address counts by its /64, which one subscriber usually holds whole.
func ByClientIP(c *fiber.Ctx) string {
	return AddressKey(httpserver.ClientIP(c))
}

// AddressKey is the key of a client address: IPv4 as is, IPv6 by /64.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

const defaultMessage = "too many requests; retry later"

// Take counts one event of key; when key has none left it returns the 429
// to answer. A nil limiter never limits, and a limiter that fails lets the
// event through.
func Take(ctx context.Context, l Limiter, key, message string) error {
	return take(ctx, l, key, message, nil)
}

// Check returns the 429 to answer when key has nothing left, counting
// nothing (with [Record]: limit failures only).
func Check(ctx context.Context, l Limiter, key, message string) error {
	return check(ctx, l, key, message, nil)
}

// Record counts one event of key, whatever is left (a failure).
func Record(ctx context.Context, l Limiter, key string) {
	if l != nil {
		_, _ = l.Allow(ctx, key)
	}
}

func take(ctx context.Context, l Limiter, key, message string, log *zap.Logger) error {
	if l == nil {
		return nil
	}
	return verdict(l.Allow(ctx, key))(message, log)
}

func check(ctx context.Context, l Limiter, key, message string, log *zap.Logger) error {
	if l == nil {
		return nil
	}
	return verdict(l.Peek(ctx, key))(message, log)
}

func verdict(r Result, err error) func(string, *zap.Logger) error {
	return func(message string, log *zap.Logger) error {
		if err != nil {
			if log != nil {
				log.Warn("rate limit not checked", zap.Error(err))
			}
			return nil
		}
		if r.Allowed {
			return nil
		}
		if message == "" {
			message = defaultMessage
		}
		return httpserver.RateLimited(message, r.RetryAfter)
	}
}

// Budget is the provider.Budget of platform calls: each call of an app
// spends one from the app's allowance (Limiter keyed by appid).
type Budget struct {
	Limiter Limiter
}

// Spend takes one call from app's budget, or returns the 429 to answer.
func (b Budget) Spend(ctx context.Context, app config.App) error {
	return Take(ctx, b.Limiter, app.AppID,
		"this app's budget of "+app.Platform+" calls is spent for now (it protects the app's quota); retry shortly")
}
