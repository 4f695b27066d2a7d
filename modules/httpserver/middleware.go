package httpserver

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"
)

// Middleware is app-wide middleware that observes every request (metrics,
// tracing): it runs after the request id is set and before any route, for
// matched and unmatched requests alike. Middleware of this kind must not
// depend on each other: each renders an error it receives with
// [RenderError] before reading the status, and reads what it needs with
// [RouteOf], [ErrorCode] and [ErrorOf], which do not depend on the order.
type Middleware struct {
	// Name says what it is (and breaks ties of Order).
	Name string
	// Order places it: lower runs first, i.e. wraps the others. Tracing
	// uses 100, so that its span covers the metrics' work; metrics 200.
	Order int
	// Handler is the middleware; it must call c.Next(). nil installs
	// nothing (a module that is switched off).
	Handler fiber.Handler
}

// MiddlewareGroup is the value group of [Middleware].
const MiddlewareGroup = "httpserver.middleware"

// AsMiddleware annotates a constructor of a [Middleware] so that it joins
// the "httpserver.middleware" group:
// fx.Provide(httpserver.AsMiddleware(NewMyMiddleware)).
func AsMiddleware(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"`+MiddlewareGroup+`"`))
}

// useMiddleware installs the group's middleware in a stable order (value
// groups come in random order).
func useMiddleware(app *fiber.App, ms []Middleware) {
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b Middleware) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), strings.Compare(a.Name, b.Name))
	})
	for _, m := range ms {
		if m.Handler != nil {
			app.Use(m.Handler)
		}
	}
}

// RenderError renders err now through the application's error handler,
// so that the response's status is the one the client gets. Middleware
// that reads the status after c.Next() calls it with c.Next()'s error and
// then returns nil.
func RenderError(c *fiber.Ctx, err error) {
	if err == nil {
		return
	}
	if herr := c.App().ErrorHandler(c, err); herr != nil {
		_ = c.SendStatus(fiber.StatusInternalServerError)
	}
}

const (
	localErrorCode = "wxlogin.error_code"
	localError     = "wxlogin.error"
)

// ErrorCode is the "error.code" of the request's error answer, once it has
// been rendered ("" for a success).
func ErrorCode(c *fiber.Ctx) string {
	code, _ := c.Locals(localErrorCode).(string)
	return code
}

// ErrorOf is the error a handler returned, once it has been rendered (nil
// for a success). It is for classification (metrics): its text is for
// logs only.
func ErrorOf(c *fiber.Ctx) error {
	err, _ := c.Locals(localError).(error)
	return err
}

// RouteOf is the template of the route that served the request, such as
// "/api/v1/auth/sessions/:id" — never the raw path, so that it can label
// metrics and name spans. When middleware answered before an endpoint was
// reached (a guard on a group refusing the token), it is the template of
// the endpoint the request was for. It is "" when no route matches (404,
// 405).
func RouteOf(c *fiber.Ctx) string {
	idx := routeIndexOf(c.App())
	if r := c.Route(); idx.endpoints[r] {
		return r.Path
	}
	segs := split(c.Path())
	method := c.Method()
	for _, e := range idx.routes {
		if e.method == method && matchSegments(e.segments, segs) {
			return e.template
		}
	}
	return ""
}

// routeIndex knows an application's endpoint routes (not app.Use's or a
// group's middleware, which Fiber also registers per method, with the same
// exported fields).
type routeIndex struct {
	handlers  uint32
	endpoints map[*fiber.Route]bool
	routes    []endpoint
}

type endpoint struct {
	method   string
	template string
	segments []string
}

// indexes caches each application's routeIndex, rebuilt when routes are added.
var indexes sync.Map // *fiber.App → *routeIndex

func routeIndexOf(app *fiber.App) *routeIndex {
	if v, ok := indexes.Load(app); ok {
		if idx := v.(*routeIndex); idx.handlers == app.HandlersCount() {
			return idx
		}
	}
	idx := &routeIndex{handlers: app.HandlersCount(), endpoints: map[*fiber.Route]bool{}}
	// GetRoutes copies the routes, but the copies share their handler
	// slices with the registered ones: that tells the endpoints apart.
	first := map[*fiber.Handler]bool{}
	for _, r := range app.GetRoutes(true) {
		if len(r.Handlers) > 0 {
			first[&r.Handlers[0]] = true
		}
		idx.routes = append(idx.routes, endpoint{method: r.Method, template: r.Path, segments: split(r.Path)})
	}
	for _, stack := range app.Stack() {
		for _, r := range stack {
			if len(r.Handlers) > 0 && first[&r.Handlers[0]] {
				idx.endpoints[r] = true
			}
		}
	}
	indexes.Store(app, idx)
	return idx
}

func split(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// matchSegments matches a template's segments (":name", ":name?", "*",
// "+" or literal text) against a path's, as Fiber's default routing does
// (case-insensitive, trailing slash ignored).
func matchSegments(tpl, path []string) bool {
	for i, t := range tpl {
		switch {
		case t == "*" || t == "+":
			return t == "*" || i < len(path)
		case strings.HasPrefix(t, ":") && strings.HasSuffix(t, "?"):
			if i >= len(path) {
				return i == len(tpl)-1
			}
		case strings.HasPrefix(t, ":"):
			if i >= len(path) || path[i] == "" {
				return false
			}
		default:
			if i >= len(path) || !strings.EqualFold(t, path[i]) {
				return false
			}
		}
	}
	return len(path) == len(tpl)
}
