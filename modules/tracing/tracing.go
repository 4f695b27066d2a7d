// Package tracing records OpenTelemetry traces of the service: a server
// span per HTTP request, with child spans for every call to a platform
// (WeChat, QQ, Douyin, Alipay), every database statement and every Redis
// command the request causes.
//
// It is off unless the standard OpenTelemetry variables ask for it:
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
// OTEL_TRACES_EXPORTER (otlp, console; none keeps it off); OTEL_SDK_DISABLED=true
// turns it off whatever else is set. The exporter is the SDK's autoexport
// (OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf or grpc, OTEL_EXPORTER_OTLP_HEADERS,
// …), the sampler follows OTEL_TRACES_SAMPLER (parent-based, always on by
// default) and the resource OTEL_SERVICE_NAME (default "wxlogin") and
// OTEL_RESOURCE_ATTRIBUTES. Off, the module provides a no-op
// trace.TracerProvider and the other modules skip their instrumentation.
//
// An incoming W3C traceparent header makes the request's span a child of
// the caller's; no trace context is sent to the platforms. The server span
// is named after the route's template ("POST /api/v1/auth/login") and carries
// the request id (wxlogin.request_id), the status and the error code. No
// secret, code or token is ever an attribute: outbound URLs lose their query
// string before the span sees them, database spans hold the statement with
// its placeholders and never its arguments, Redis spans name the command
// without its arguments, and error texts are not recorded.
//
// [Module] provides trace.TracerProvider and propagation.TextMapPropagator;
// modules/database, modules/redis and the platform clients take the
// provider from fx when it is there. A business module takes it too and
// starts its own spans from c.UserContext(). An application replaces the
// provider with fx.Decorate(func(trace.TracerProvider) trace.TracerProvider {…})
// (the tests use an in-memory exporter that way) or the propagator likewise.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/internal/buildinfo"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// Module provides the tracer provider and the propagator, and traces every
// HTTP request.
var Module = fx.Module("tracing",
	fx.Provide(
		New,
		func() propagation.TextMapPropagator { return propagation.TraceContext{} },
		httpserver.AsMiddleware(func(tp trace.TracerProvider, prop propagation.TextMapPropagator) httpserver.Middleware {
			if _, off := tp.(noop.TracerProvider); off {
				return httpserver.Middleware{Name: "tracing"} // off: nothing on the request path
			}
			return httpserver.Middleware{Name: "tracing", Order: 100, Handler: Middleware(tp, prop)}
		}),
	),
)

// LookupFunc reads one environment variable; os.LookupEnv is the usual one.
type LookupFunc func(string) (string, bool)

// Enabled reports whether the OTEL_* variables ask for traces.
func Enabled(lookup LookupFunc) bool {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	if e := get("OTEL_TRACES_EXPORTER"); e != "" {
		return e != "none"
	}
	return get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// New returns the SDK's tracer provider exporting as the OTEL_* variables
// say, flushed and shut down with the application, or a no-op provider
// when they ask for no traces.
func New(lc fx.Lifecycle, log *zap.Logger) (trace.TracerProvider, error) {
	if !Enabled(os.LookupEnv) {
		return noop.NewTracerProvider(), nil
	}
	ctx := context.Background()
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: the OTEL_* variables name no usable exporter: %w", err)
	}
	version, _ := buildinfo.Get()
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "wxlogin"), attribute.String("service.version", version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override the above
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	lc.Append(fx.StopHook(func(ctx context.Context) error { return tp.Shutdown(ctx) }))
	log.Info("tracing on", zap.String("exporter", fmt.Sprintf("%T", exp)))
	return tp, nil
}
