package platformhttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/wxlogin/wxlogin/internal/platformhttp"
)

// TestTracedKeepsTheQueryOutOfSpans: the platform gets the whole URL, the
// span only its path; no trace context goes out.
func TestTracedKeepsTheQueryOutOfSpans(t *testing.T) {
	var gotQuery, gotTraceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery, gotTraceparent = r.URL.RawQuery, r.Header.Get("traceparent")
		_, _ = io.WriteString(w, `{"errcode":0}`)
	}))
	defer srv.Close()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	hc, err := platformhttp.NewHTTPClient(nil)
	require.NoError(t, err)
	hc = platformhttp.TracedClient(hc, tp, "qq")

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	resp, err := platformhttp.Do(ctx, hc, 0, platformhttp.Request{Method: "GET", URL: srv.URL + "/sns/jscode2session?appid=a&secret=s3cr3t&js_code=c0de"}, 1<<10)
	parent.End()
	require.NoError(t, err)
	require.Equal(t, 200, resp.Status)
	require.Equal(t, "appid=a&secret=s3cr3t&js_code=c0de", gotQuery, "the platform gets the query")
	require.Empty(t, gotTraceparent, "no trace context is sent to a platform")

	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	call := spans[0]
	require.Equal(t, "qq GET /sns/jscode2session", call.Name)
	require.Equal(t, parent.SpanContext().SpanID(), call.Parent.SpanID())
	for _, kv := range call.Attributes {
		for _, secret := range []string{"s3cr3t", "c0de", "secret=", "?"} {
			require.NotContains(t, kv.Value.Emit(), secret, string(kv.Key))
		}
	}
	hc.CloseIdleConnections() // reaches the transport inside
}

func TestTracedOffIsTheTransportItself(t *testing.T) {
	rt := http.DefaultTransport
	require.Equal(t, rt, platformhttp.Traced(rt, nil, "qq"))
	require.Equal(t, rt, platformhttp.Traced(rt, noop.NewTracerProvider(), "qq"))
}
