// Package httpserver runs the Fiber application: it binds the listener when
// the application starts (a failed bind stops start-up), shuts down
// gracefully when it stops, gives every request an id and an access-log
// line, and turns every error into one JSON shape:
//
//	{"error": {"code": "stable_code", "message": "what a person should know"}}
//
// Routes come from the "routes" value group ([AsRoute]) and readiness
// checks from the "readiness" group (health.AsCheck); a business module adds
// its routes the same way the built-in ones do. Route registration order
// does not matter: middleware that must run in order is attached by each
// route itself (see modules/auth). Middleware that observes every request
// (metrics, tracing) comes from the "httpserver.middleware" group
// ([AsMiddleware]) and runs in its declared order; it labels what it records
// with [RouteOf], the route's template, never the raw path.
//
// Request bodies are read as they arrive and never beyond a limit:
// config.HTTP.BodyLimit (64 KiB by default) for every route, except the
// routes a [Route] declares larger with [LargeBodies] (uploads), which read
// their bodies themselves within their own limit. A body that would exceed
// its limit is answered 413 body_too_large before it is read; compressed
// bodies are decompressed within the same limit. Every answer carries
// X-Content-Type-Options: nosniff and, unless the handler says otherwise,
// Cache-Control: no-store (tokens and profiles must not be cached).
// [ClientIP] is the client's address, read from the proxy header only when
// the peer is one of config.HTTP.TrustedProxies. A request's context
// (c.UserContext()) ends at config.HTTP.RequestTimeout, so a dependency that
// stops answering makes it a 503 rather than a request that hangs.
//
// An application may replace the error mapping for its own error types by
// returning an [*Error] from handlers, or decorate *fiber.App with
// fx.Decorate to add app-wide middleware before routes are registered.
package httpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/health"
)

// Module provides the *Server and its *fiber.App and serves them.
var Module = fx.Module("httpserver",
	fx.Provide(New),
	fx.Provide(func(s *Server) *fiber.App { return s.App }),
	fx.Invoke(func(*Server) {}),
)

// Route registers handlers on the application.
type Route interface {
	Register(app *fiber.App)
}

// RouteFunc adapts a function to Route.
type RouteFunc func(app *fiber.App)

// Register calls f.
func (f RouteFunc) Register(app *fiber.App) { f(app) }

// AsRoute annotates a constructor of a Route so that it joins the "routes"
// group: fx.Provide(httpserver.AsRoute(NewMyRoutes)).
func AsRoute(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(Route)), fx.ResultTags(`group:"routes"`))
}

// Params are New's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.HTTP
	Logger    *zap.Logger
	Routes    []Route        `group:"routes"`
	Checks    []health.Check `group:"readiness"`
	// Middleware observes every request (metrics, tracing); see [AsMiddleware].
	Middleware []Middleware `group:"httpserver.middleware"`
}

// Server is the Fiber application and its listener.
type Server struct {
	App    *fiber.App
	cfg    config.HTTP
	logger *zap.Logger
	addr   atomic.Value // string, once bound
	conns  *connTracker
}

// New builds the server, registers health, readiness and the grouped
// routes, and ties the listener to the lifecycle.
func New(p Params) (*Server, error) {
	var limits []BodyLimit
	for _, r := range p.Routes {
		if lb, ok := r.(LargeBodies); ok {
			limits = append(limits, lb.BodyLimits()...)
		}
	}
	app, err := newApp(p.Config, p.Logger, limits)
	if err != nil {
		return nil, err
	}
	s := &Server{App: app, cfg: p.Config, logger: p.Logger, conns: newConnTracker()}
	s.App.Server().ConnState = s.conns.set
	s.App.Use(func(c *fiber.Ctx) error {
		s.conns.busy(c.Context().Conn())
		return c.Next()
	})
	useMiddleware(s.App, p.Middleware)
	RegisterHealth(s.App, p.Checks)
	for _, r := range p.Routes {
		r.Register(s.App)
	}
	p.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s, nil
}

// DefaultBodyLimit is the largest body of a route that declares no limit
// of its own, when config.HTTP.BodyLimit is not set: JSON requests are small.
const DefaultBodyLimit = 64 << 10

// NewApp returns a Fiber application with the project's error handler,
// request ids, access log, security headers, body limits and panic
// recovery, and no routes. Tests and applications without fx use it
// directly; limits are the routes that take larger bodies (see
// [LargeBodies]). It panics on an invalid config.HTTP.TrustedProxies, which
// config.Load refuses first.
func NewApp(cfg config.HTTP, logger *zap.Logger, limits ...BodyLimit) *fiber.App {
	app, err := newApp(cfg, logger, limits)
	if err != nil {
		panic(err)
	}
	return app
}

func newApp(cfg config.HTTP, logger *zap.Logger, limits []BodyLimit) (*fiber.App, error) {
	bodies := newBodyLimits(cfg.BodyLimit, limits)
	proxies, err := newProxyTrust(cfg)
	if err != nil {
		return nil, err
	}
	app := fiber.New(fiber.Config{
		AppName:               "wxlogin",
		DisableStartupMessage: true,
		// Bodies are streamed: fasthttp would otherwise allocate a buffer of
		// the announced Content-Length before a byte of it arrives, so
		// stalled uploads could pin memory. limitBody reads them, within
		// each route's limit.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    bodies.max(),
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  2 * time.Minute,
		ErrorHandler:                 ErrorHandler(logger),
	})
	app.Use(requestID, securityHeaders, accessLog(logger, proxies), recover.New(), deadline(cfg.RequestTimeout), bodies.handler)
	return app, nil
}

// DefaultRequestTimeout bounds a request's work when config.HTTP.RequestTimeout
// is not set.
const DefaultRequestTimeout = 15 * time.Second

// deadline gives the request's context (c.UserContext()) a deadline, so
// that every call a handler makes with it — the database, Redis — gives up
// when a dependency stops answering, and the client gets a 503 instead of a
// request that hangs.
func deadline(d time.Duration) fiber.Handler {
	if d <= 0 {
		d = DefaultRequestTimeout
	}
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), d)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	}
}

// securityHeaders sets what every answer carries: no content sniffing,
// and no caching unless the handler allows it (a token or a profile must
// never stay in a shared or browser cache).
func securityHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}

// Start binds the listener and serves in the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: cannot listen on %s (APP_HTTP_ADDR): %w", s.cfg.Addr, err)
	}
	s.addr.Store(ln.Addr().String())
	s.logger.Info("http server listening", zap.String("addr", ln.Addr().String()))
	go func() {
		if err := s.App.Listener(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			s.logger.Error("http server stopped", zap.Error(err))
		}
	}()
	return nil
}

// Stop lets requests in flight finish, within the shutdown timeout.
// Connections without a request in a handler (never used, idle between
// keep-alive requests, or still sending one) are closed at once: fasthttp
// alone would wait for their read timeout. Whatever is still open at the
// timeout is closed too.
func (s *Server) Stop(ctx context.Context) error {
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.App.ShutdownWithContext(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.conns.closeQuiet()
		select {
		case err := <-done:
			if err != nil {
				n := s.conns.closeAll()
				s.logger.Warn("http shutdown timed out; closed the remaining connections", zap.Int("connections", n))
			}
			return nil
		case <-tick.C:
		}
	}
}

// connTracker knows every open connection and whether a handler is
// serving a request on it.
type connTracker struct {
	mu      sync.Mutex
	serving map[net.Conn]bool
}

func newConnTracker() *connTracker {
	return &connTracker{serving: map[net.Conn]bool{}}
}

// set follows fasthttp's connection states.
func (t *connTracker) set(c net.Conn, st fasthttp.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch st {
	case fasthttp.StateNew, fasthttp.StateIdle:
		t.serving[c] = false // the response, if any, has been written
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		delete(t.serving, c)
	}
}

// busy marks that a handler serves a request on c.
func (t *connTracker) busy(c net.Conn) {
	t.mu.Lock()
	t.serving[c] = true
	t.mu.Unlock()
}

// closeQuiet closes the connections no handler is serving.
func (t *connTracker) closeQuiet() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c, serving := range t.serving {
		if !serving {
			_ = c.Close()
			delete(t.serving, c)
		}
	}
}

// closeAll closes every connection and returns how many there were.
func (t *connTracker) closeAll() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.serving)
	for c := range t.serving {
		_ = c.Close()
		delete(t.serving, c)
	}
	return n
}

// Addr is the bound address (useful with port 0), or "" before start.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

// RegisterHealth adds GET /healthz (the process is up) and GET /readyz
// (every check passes).
func RegisterHealth(app *fiber.App, checks []health.Check) {
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		results := make(map[string]string, len(checks))
		ready := true
		for _, ch := range checks {
			ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
			err := ch.Run(ctx)
			cancel()
			if err != nil {
				ready = false
				results[ch.Name] = "unavailable"
				Logger(c).Warn("readiness check failed", zap.String("check", ch.Name), zap.Error(err))
				continue
			}
			results[ch.Name] = "ok"
		}
		if !ready {
			c.Locals(localErrorCode, "not_ready")
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{
				"error":  Body{Code: "not_ready", Message: "a dependency is unavailable"},
				"checks": results,
			})
		}
		return c.JSON(fiber.Map{"status": "ready", "checks": results})
	})
}

const (
	requestIDHeader = "X-Request-ID"
	localRequestID  = "wxlogin.request_id"
	localLogger     = "wxlogin.logger"
)

// requestID keeps a well-formed incoming X-Request-ID or makes one.
func requestID(c *fiber.Ctx) error {
	id := c.Get(requestIDHeader)
	if !validRequestID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	} else {
		id = string([]byte(id)) // the header buffer is reused after the request
	}
	c.Locals(localRequestID, id)
	c.Set(requestIDHeader, id)
	return c.Next()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// RequestID returns the request's id.
func RequestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// Logger returns the request's logger (with its request id).
func Logger(c *fiber.Ctx) *zap.Logger {
	if l, ok := c.Locals(localLogger).(*zap.Logger); ok {
		return l
	}
	return zap.NewNop()
}

// accessLog writes one line per request. It logs the path without the
// query string: nothing secret belongs in a query, but if a client puts
// one there it still stays out of the logs. It also finds the client's
// address ([ClientIP]).
func accessLog(logger *zap.Logger, proxies *proxyTrust) fiber.Handler {
	access := logger.Named("access")
	return func(c *fiber.Ctx) error {
		start := time.Now()
		c.Locals(localClientIP, proxies.clientIP(c))
		c.Locals(localLogger, logger.With(zap.String("request_id", RequestID(c))))
		// Render now so the logged status is the one the client gets.
		RenderError(c, c.Next())
		fields := make([]zap.Field, 0, 9)
		fields = append(fields,
			zap.String("request_id", RequestID(c)),
			zap.String("method", c.Method()),
			zap.String("path", c.Path()),
			zap.Int("status", c.Response().StatusCode()),
			zap.Duration("duration", time.Since(start)),
			zap.Int("bytes", len(c.Response().Body())),
			zap.String("ip", ClientIP(c)),
		)
		// The trace the tracing middleware (if any) recorded this request in.
		if sc := trace.SpanContextFromContext(c.UserContext()); sc.IsValid() {
			fields = append(fields, zap.String("trace_id", sc.TraceID().String()))
		}
		access.Info("request", fields...)
		return nil
	}
}
