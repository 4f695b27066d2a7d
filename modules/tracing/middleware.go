package tracing

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// Attribute keys of this service's own.
const (
	// AttrRequestID is the request's X-Request-ID.
	AttrRequestID = attribute.Key("wxlogin.request_id")
	// AttrErrorCode is the error answer's code (error.code of the body).
	AttrErrorCode = attribute.Key("wxlogin.error_code")
)

// Middleware traces every request as a server span of tp: a child of the
// caller's span when the request carries a trace context prop can read
// (traceparent), named "METHOD /route/template". The span is in
// c.UserContext(), so that whatever the handlers do with that context
// (platform calls, database, Redis) becomes its children.
//
// gofiber/contrib/otelfiber does much the same, but records error texts and
// the query string, and names spans by the middleware's route when a
// group's middleware answered; this one uses httpserver.RouteOf and records
// neither.
func Middleware(tp trace.TracerProvider, prop propagation.TextMapPropagator) fiber.Handler {
	tracer := tp.Tracer("github.com/wxlogin/wxlogin/modules/tracing")
	return func(c *fiber.Ctx) error {
		// Fiber's strings alias buffers reused after the request; a span
		// outlives it, so what it keeps is copied.
		method := strings.Clone(c.Method())
		ctx := prop.Extract(c.UserContext(), carrier{c})
		ctx, span := tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		c.SetUserContext(ctx)
		if span.IsRecording() {
			span.SetAttributes(
				semconv.HTTPRequestMethodKey.String(method),
				semconv.URLPath(strings.Clone(c.Path())),
				semconv.URLScheme(strings.Clone(c.Protocol())),
				AttrRequestID.String(httpserver.RequestID(c)),
			)
		}
		httpserver.RenderError(c, c.Next())
		if !span.IsRecording() {
			return nil
		}
		status := c.Response().StatusCode()
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if route := httpserver.RouteOf(c); route != "" {
			span.SetName(method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		if code := httpserver.ErrorCode(c); code != "" {
			span.SetAttributes(AttrErrorCode.String(code))
			if status >= 500 {
				// A server span is an error only for 5xx (OpenTelemetry's
				// HTTP conventions); the code, never the error's text.
				span.SetAttributes(semconv.ErrorTypeKey.String(code))
				span.SetStatus(codes.Error, code)
			}
		}
		return nil
	}
}

// carrier reads a request's headers for a propagator (copies: the
// propagator may keep what it reads, e.g. tracestate).
type carrier struct{ c *fiber.Ctx }

func (h carrier) Get(key string) string { return strings.Clone(h.c.Get(key)) }

func (h carrier) Set(string, string) {}

func (h carrier) Keys() []string {
	var keys []string
	h.c.Request().Header.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}
