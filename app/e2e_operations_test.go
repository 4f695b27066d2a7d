package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/metrics"
)

// operated is a running service and its operator listener.
type operated struct {
	*service
	ops string // http://host:port of the operator listener
}

func bootOperated(t *testing.T, vars map[string]string, extra ...fx.Option) operated {
	t.Helper()
	var ms *metrics.Server
	s := bootConfig(t, testConfigFor(t, vars), append(extra, fx.Populate(&ms))...)
	require.NotEmpty(t, ms.Addr(), "the operator listener is bound")
	return operated{service: s, ops: "http://" + ms.Addr()}
}

// scrape is one read of GET /metrics.
type scrape struct {
	raw      string
	families map[string]*dto.MetricFamily
}

func (o operated) scrape() scrape {
	o.t.Helper()
	resp, err := o.http.Get(o.ops + "/metrics")
	require.NoError(o.t, err)
	defer resp.Body.Close()
	require.Equal(o.t, 200, resp.StatusCode)
	require.True(o.t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), "Prometheus text format")
	raw, err := io.ReadAll(resp.Body)
	require.NoError(o.t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	require.NoError(o.t, err)
	return scrape{raw: string(raw), families: fams}
}

// value sums the samples of family name whose labels include want (a
// histogram's sample count).
func (s scrape) value(name string, want map[string]string) float64 {
	f, ok := s.families[name]
	if !ok {
		return 0
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		default:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// moved asserts that a metric grew by exactly delta between two scrapes.
func moved(t *testing.T, before, after scrape, name string, labels map[string]string, delta float64) {
	t.Helper()
	require.Equal(t, delta, after.value(name, labels)-before.value(name, labels), "%s%v", name, labels)
}

func TestMetricsEndToEnd(t *testing.T) {
	o := bootOperated(t, nil)
	appid := o.cfg.Apps[0].AppID
	before := o.scrape()

	d, r := o.login("metrics-user")
	access := r.Str("access_token")
	o.remember(access, r.Str("refresh_token"), d.SessionKey)
	require.Equal(t, 200, o.call("GET", o.api+"/api/v1/me", access, nil).Status)
	require.Equal(t, 200, o.call("GET", o.api+"/api/v1/me", access, nil).Status)
	require.Equal(t, 401, o.call("GET", o.api+"/api/v1/me", "not-a-token", nil).Status)
	require.Equal(t, 401, o.call("GET", o.api+"/api/v1/example/greeting", "", nil).Status)
	require.Equal(t, 404, o.call("GET", o.api+"/no/such/route/"+d.OpenID, "", nil).Status)
	require.Equal(t, 401, o.call("POST", o.api+"/api/v1/auth/login", "", map[string]string{"code": "used-or-unknown"}).Status)
	ph := o.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13800000009"})
	require.Equal(t, 200, o.call("POST", o.api+"/api/v1/me/phone", access, map[string]string{"code": ph["code"]}).Status)
	// WeChat's own quota (45011) answers 429, counted as the platform's.
	require.Equal(t, 200, o.call("POST", o.emu+"/emulator/faults", "", map[string]any{"path": "/sns/jscode2session", "errcode": 45011, "count": 1}).Status)
	require.Equal(t, 429, o.call("POST", o.api+"/api/v1/auth/login", "", map[string]string{"code": o.wxLogin("metrics-user").Code}).Status)

	after := o.scrape()
	moved(t, before, after, "wxlogin_logins_total", map[string]string{"platform": "wechat", "appid": appid, "outcome": "ok"}, 1)
	moved(t, before, after, "wxlogin_logins_total", map[string]string{"platform": "wechat", "appid": appid, "outcome": "invalid_code"}, 1)
	moved(t, before, after, "wxlogin_logins_total", map[string]string{"appid": appid, "outcome": "rate_limited"}, 1)
	moved(t, before, after, "wxlogin_users_registered_total", map[string]string{"platform": "wechat", "appid": appid}, 1)
	moved(t, before, after, "wxlogin_http_requests_total", map[string]string{"method": "POST", "route": "/api/v1/auth/login", "status": "200"}, 1)
	moved(t, before, after, "wxlogin_http_requests_total", map[string]string{"method": "GET", "route": "/api/v1/me", "status": "200"}, 2)
	moved(t, before, after, "wxlogin_http_request_duration_seconds", map[string]string{"method": "GET", "route": "/api/v1/me"}, 3)
	moved(t, before, after, "wxlogin_http_requests_total", map[string]string{"route": "unmatched", "status": "404"}, 1)
	moved(t, before, after, "wxlogin_http_errors_total", map[string]string{"route": "/api/v1/me", "code": "unauthenticated"}, 1)
	moved(t, before, after, "wxlogin_http_errors_total", map[string]string{"route": "/api/v1/example/greeting", "code": "unauthenticated"}, 1)
	moved(t, before, after, "wxlogin_http_rate_limited_total", map[string]string{"route": "/api/v1/auth/login", "by": "wechat"}, 1)
	moved(t, before, after, "wxlogin_wechat_calls_total", map[string]string{"appid": appid, "path": "/sns/jscode2session", "errcode": "0"}, 1)
	moved(t, before, after, "wxlogin_wechat_calls_total", map[string]string{"appid": appid, "path": "/sns/jscode2session", "errcode": "40029"}, 1)
	moved(t, before, after, "wxlogin_wechat_calls_total", map[string]string{"appid": appid, "path": "/sns/jscode2session", "errcode": "45011"}, 1)
	moved(t, before, after, "wxlogin_wechat_calls_total", map[string]string{"appid": appid, "path": "/wxa/business/getuserphonenumber", "errcode": "0"}, 1)
	moved(t, before, after, "wxlogin_access_token_fetches_total", map[string]string{"platform": "wechat", "appid": appid, "result": "ok"}, 1)
	moved(t, before, after, "wxlogin_token_verifications_total", map[string]string{"strategy": "jwt", "cache": "miss", "result": "ok"}, 1)
	moved(t, before, after, "wxlogin_token_verifications_total", map[string]string{"strategy": "jwt", "cache": "hit", "result": "ok"}, 2)
	moved(t, before, after, "wxlogin_token_verifications_total", map[string]string{"strategy": "jwt", "result": "invalid"}, 1)

	require.Equal(t, 1.0, after.value("wxlogin_token_revocation_feed_live", map[string]string{"feed": "poll"}))
	require.Positive(t, after.value("wxlogin_token_cache_entries", nil))
	require.Positive(t, after.value("go_sql_open_connections", map[string]string{"db_name": "wxlogin"}), "database pool statistics")
	require.Equal(t, 1.0, after.value("wxlogin_build_info", nil))
	require.Positive(t, after.value("go_goroutines", nil))
	require.Zero(t, after.value("wxlogin_http_requests_in_flight", nil))

	// Nothing about a person or a credential is a label: no openid, no
	// raw path, no token.
	for _, leak := range []string{d.OpenID, access, d.SessionKey, "/no/such/route", o.cfg.WeChat.Secret} {
		require.NotContains(t, after.raw, leak)
	}

	t.Run("pprof", func(t *testing.T) {
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
			resp, err := o.http.Get(o.ops + path)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode, path)
		}
		// Neither is served on the public port.
		require.Equal(t, 404, o.call("GET", o.api+"/metrics", "", nil).Status)
		require.Equal(t, 404, o.call("GET", o.api+"/debug/pprof/", "", nil).Status)
	})
}

// TestMetricsWithRedis: the Redis pool and the revocation feed's lag.
func TestMetricsWithRedis(t *testing.T) {
	o := bootOperated(t, strategyVars(t, "redis"))
	before := o.scrape()
	d, r := o.login("metrics-redis-user")
	access := r.Str("access_token")
	o.remember(access, r.Str("refresh_token"), d.SessionKey)
	require.Equal(t, 204, o.call("POST", o.api+"/api/v1/auth/logout", access, nil).Status)

	var after scrape
	testutil.Eventually(t, 5*time.Second, func() bool {
		after = o.scrape()
		return after.value("wxlogin_token_revocation_feed_lag_seconds", map[string]string{"feed": "redis"}) >
			before.value("wxlogin_token_revocation_feed_lag_seconds", map[string]string{"feed": "redis"})
	}, "the logout's revocation came back through the Redis feed and its lag was measured")
	require.Equal(t, 1.0, after.value("wxlogin_token_revocation_feed_live", map[string]string{"feed": "redis"}))
	require.Positive(t, after.value("wxlogin_redis_pool_connections", nil), "Redis pool statistics")
	require.Positive(t, after.value("wxlogin_redis_pool_hits_total", nil)+after.value("wxlogin_redis_pool_misses_total", nil))
	moved(t, before, after, "wxlogin_token_verifications_total", map[string]string{"strategy": "redis", "cache": "miss", "result": "ok"}, 1)
}

func TestOperatorListenerOff(t *testing.T) {
	var ms *metrics.Server
	s := bootConfig(t, testConfigFor(t, map[string]string{"APP_ADMIN_ADDR": ""}), fx.Populate(&ms))
	require.Empty(t, ms.Addr())
	require.Equal(t, 200, s.call("GET", s.api+"/healthz", "", nil).Status)
}

func TestOperatorListenerBindFailureStopsStartUp(t *testing.T) {
	cfg := testConfigFor(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the port is taken
	require.NoError(t, err)
	defer ln.Close()
	cfg.Operator = config.Operator{Addr: ln.Addr().String()}
	app := fx.New(Options(cfg), fx.NopLogger)
	err = app.Start(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), "APP_ADMIN_ADDR")
	_ = app.Stop(context.Background())
}

// TestTracingEndToEnd: one request carrying a traceparent is one server
// span (with the request id) whose children are the WeChat call, the
// database statements and the Redis commands it caused; no attribute holds
// a secret, a code, a token or a session key.
func TestTracingEndToEnd(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	o := bootOperated(t, strategyVars(t, "redis"),
		fx.Decorate(func(trace.TracerProvider) trace.TracerProvider { return tp }))

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	d := o.wxLogin("traced-user")
	req, err := http.NewRequest("POST", o.api+"/api/v1/auth/login", strings.NewReader(`{"code":"`+d.Code+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	req.Header.Set("X-Request-ID", "trace-test-login")
	r := o.do(req)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	access := r.Str("access_token")

	// A phone number: an access-token fetch and a call with access_token
	// in its query.
	ph := o.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13800000010"})
	require.Equal(t, 200, o.call("POST", o.api+"/api/v1/me/phone", access, map[string]string{"code": ph["code"]}).Status)

	spans := exp.GetSpans()
	var server tracetest.SpanStub
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer && s.SpanContext.TraceID().String() == traceID {
			server = s
		}
	}
	require.Equal(t, "POST /api/v1/auth/login", server.Name, "the server span is named after the route")
	require.Equal(t, parentID, server.Parent.SpanID().String(), "the caller's traceparent is the parent")
	require.Equal(t, "trace-test-login", attr(server.Attributes, "wxlogin.request_id"))
	require.Equal(t, "/api/v1/auth/login", attr(server.Attributes, "http.route"))
	require.Equal(t, "200", attr(server.Attributes, "http.response.status_code"))

	// Every span of the trace descends from the server span.
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	kinds := map[string]int{}
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != traceID || s.SpanContext.SpanID() == server.SpanContext.SpanID() {
			continue
		}
		p := s
		for p.Parent.SpanID() != server.SpanContext.SpanID() {
			next, ok := byID[p.Parent.SpanID()]
			require.True(t, ok, "span %q descends from the request's span", s.Name)
			p = next
		}
		switch {
		case s.Name == "wechat GET /sns/jscode2session":
			kinds["wechat"]++
			require.Equal(t, trace.SpanKindClient, s.SpanKind)
		case attr(s.Attributes, "db.system.name") == "sqlite":
			kinds["database"]++
		case attr(s.Attributes, "db.system.name") == "redis" || attr(s.Attributes, "db.system") == "redis":
			kinds["redis"]++
		}
	}
	require.Equal(t, 1, kinds["wechat"], "one WeChat call: %v", names(spans))
	require.Positive(t, kinds["database"], "the user store's statements: %v", names(spans))
	require.Positive(t, kinds["redis"], "the token store's commands: %v", names(spans))

	// The phone request's spans: the access-token fetch and the phone call,
	// without their query strings.
	seen := map[string]bool{}
	for _, s := range spans {
		seen[s.Name] = true
	}
	require.True(t, seen["wechat POST /cgi-bin/stable_token"], "%v", names(spans))
	require.True(t, seen["wechat POST /wxa/business/getuserphonenumber"], "%v", names(spans))

	secrets := []string{o.cfg.WeChat.Secret, o.cfg.Token.Secret, d.Code, d.SessionKey, ph["code"], access, r.Str("refresh_token"),
		"secret=", "js_code=", "access_token=", "13800000010"}
	for _, a := range o.cfg.Apps {
		secrets = append(secrets, a.Secret)
	}
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, kv.Value.Emit())
		}
		for _, e := range s.Events {
			texts = append(texts, e.Name)
			for _, kv := range e.Attributes {
				texts = append(texts, kv.Value.Emit())
			}
		}
		for _, text := range texts {
			for _, secret := range secrets {
				require.NotContains(t, text, secret, "span %q", s.Name)
			}
		}
	}
}

func attr(kvs []attribute.KeyValue, key string) string {
	for _, kv := range kvs {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
