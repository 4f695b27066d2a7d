package tracing_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/modules/tracing"
)

func TestEnabledFollowsTheOTelVariables(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "wxlogin"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
	} {
		got := tracing.Enabled(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		require.Equal(t, tc.want, got, "%v", tc.env)
	}
}

// TestOffWithoutVariables: without OTEL_* variables the provider is a no-op,
// which the other modules take as "do not instrument".
func TestOffWithoutVariables(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"} {
		t.Setenv(k, "")
	}
	var tp trace.TracerProvider
	fxtest.New(t, fx.Supply(zap.NewNop()), fx.Provide(tracing.New), fx.Populate(&tp), fx.NopLogger).RequireStart().RequireStop()
	require.IsType(t, noop.TracerProvider{}, tp)
}

// TestOnWithAnEndpoint: an OTLP endpoint turns the SDK on; spans are
// exported in batches and flushed when the application stops (here to an
// endpoint nobody listens on: stopping must not hang or fail).
func TestOnWithAnEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
	var tp trace.TracerProvider
	app := fxtest.New(t, fx.Supply(zap.NewNop()), fx.Provide(tracing.New), fx.Populate(&tp), fx.NopLogger)
	app.RequireStart()
	_, span := tp.Tracer("test").Start(context.Background(), "work")
	require.True(t, span.IsRecording())
	span.End()
	app.RequireStop()
}
