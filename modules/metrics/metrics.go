// Package metrics measures the service for its operators: Prometheus
// metrics (the official client, github.com/prometheus/client_golang) and
// Go's profiler, served on an operator listener of their own
// (APP_ADMIN_ADDR, 127.0.0.1:9090 by default; empty turns it off), apart
// from the public API:
//
//	GET /metrics          Prometheus text format
//	GET /debug/pprof/     net/http/pprof (heap, goroutine, profile, trace, …)
//
// [Module] provides the *prometheus.Registry (also as prometheus.Registerer
// and prometheus.Gatherer) and the listener, and measures the other
// modules through small observer interfaces they define and take from fx
// when present — none of them imports Prometheus: the HTTP middleware
// (httpserver.AsMiddleware), auth.LoginObserver, wechat.Observer,
// platformtoken.Observer, token.Observer and a user.Listener; plus the
// database pool (*sql.DB), the Redis pool (redis.UniversalClient), the
// verification cache's size, the Go runtime, the process and the build.
//
// Every label set is bounded: routes are templates ("/api/v1/auth/sessions/:id"),
// never raw paths; appids come from the configuration; error codes,
// reasons and WeChat errcodes are finite sets. No user id, openid, token or
// secret is ever a label value.
//
// A business module adds its own metrics to the same registry: take a
// prometheus.Registerer and register collectors on it (the README shows one,
// modules/example/metrics_example_test.go). An application replaces the
// registry with fx.Decorate(func(*prometheus.Registry) *prometheus.Registry {…})
// or leaves the module out (the observers are then absent and cost nothing).
package metrics

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

// Module provides the registry, the operator listener and the service's
// metrics, and hands the observers to the modules that take them.
var Module = fx.Module("metrics",
	fx.Provide(
		NewRegistry,
		func(r *prometheus.Registry) prometheus.Registerer { return r },
		func(r *prometheus.Registry) prometheus.Gatherer { return r },
		New,
		NewServer,
		httpserver.AsMiddleware(func(m *Metrics) httpserver.Middleware {
			return httpserver.Middleware{Name: "metrics", Order: 200, Handler: m.Middleware()}
		}),
		func(m *Metrics) auth.LoginObserver { return m },
		func(m *Metrics) wechat.Observer { return m },
		func(m *Metrics) platformtoken.Observer { return m },
		func(m *Metrics) token.Observer { return m },
		user.AsListener(func(m *Metrics) user.Listener { return m.UserEvent }),
	),
	fx.Invoke(RegisterPools),
	fx.Invoke(func(*Server) {}),
)

// Namespace starts the name of every metric of this package.
const Namespace = "wxlogin"

// NewRegistry returns a registry with the Go runtime's, the process's and
// the build's metrics.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	return r
}

// Metrics are the service's own metrics. Its methods are the observers the
// other modules call.
type Metrics struct {
	apps config.Apps

	httpRequests    *prometheus.CounterVec
	httpDuration    *prometheus.HistogramVec
	httpInFlight    prometheus.Gauge
	httpErrors      *prometheus.CounterVec
	httpRateLimited *prometheus.CounterVec

	logins       *prometheus.CounterVec
	registered   *prometheus.CounterVec
	merged       prometheus.Counter
	wechatCalls  *prometheus.CounterVec
	wechatTime   *prometheus.HistogramVec
	tokenFetches *prometheus.CounterVec
	tokenFetch   *prometheus.HistogramVec

	verifications *prometheus.CounterVec
	feedLag       *prometheus.HistogramVec
	feedLive      *prometheus.GaugeVec
}

var (
	_ auth.LoginObserver     = (*Metrics)(nil)
	_ wechat.Observer        = (*Metrics)(nil)
	_ platformtoken.Observer = (*Metrics)(nil)
	_ token.Observer         = (*Metrics)(nil)
)

// Params are New's dependencies.
type Params struct {
	fx.In
	Registerer prometheus.Registerer
	// Apps name the platform of an appid in labels; optional.
	Apps config.Apps `optional:"true"`
}

// New creates the metrics and registers them.
func New(p Params) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	}
	m := &Metrics{
		apps: p.Apps,
		httpRequests: counter("http_requests_total",
			"HTTP requests answered, by method, route template and status.", "method", "route", "status"),
		httpDuration: histogram("http_request_duration_seconds",
			"Time to answer an HTTP request, by method and route template.", prometheus.DefBuckets, "method", "route"),
		httpInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "http_requests_in_flight",
			Help: "HTTP requests being answered now."}),
		httpErrors: counter("http_errors_total",
			"Error answers, by route template and error code (the body's error.code).", "route", "code"),
		httpRateLimited: counter("http_rate_limited_total",
			"429 answers, by route template and by whose limit: \"service\" (this service's rate limits) or the platform whose quota was reached (\"wechat\", …).",
			"route", "by"),
		logins: counter("logins_total",
			"Login requests, by platform, app and outcome (\"ok\" or the error code answered).", "platform", "appid", "outcome"),
		registered: counter("users_registered_total",
			"Users created by a first login, by platform and app.", "platform", "appid"),
		merged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "users_merged_total",
			Help: "Users absorbed by another one (a unionid showed they are one person)."}),
		wechatCalls: counter("wechat_calls_total",
			"Calls to WeChat's API, by app, API path and result: \"0\" for success, WeChat's errcode, or \"transport\"/\"bad_response\" when no usable answer came.",
			"appid", "path", "errcode"),
		wechatTime: histogram("wechat_call_duration_seconds",
			"Time a WeChat call took, by app and API path.", prometheus.DefBuckets, "appid", "path"),
		tokenFetches: counter("access_token_fetches_total",
			"Platform access tokens fetched by this instance (one per expiry window across the fleet), by platform, app and result (ok, error).",
			"platform", "appid", "result"),
		tokenFetch: histogram("access_token_fetch_duration_seconds",
			"Time an access-token fetch took, by platform and app.", prometheus.DefBuckets, "platform", "appid"),
		verifications: counter("token_verifications_total",
			"Access-token checks, by strategy, how the cache answered (hit, miss, bypass while the revocation feed is down, off) and result (ok, a refusal reason, unavailable).",
			"strategy", "cache", "result"),
		feedLag: histogram("token_revocation_feed_lag_seconds",
			"Time from a revocation to its arrival through the feed on this instance (as the two clocks tell), by feed (redis, poll).",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}, "feed"),
		feedLive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "token_revocation_feed_live",
			Help: "1 while the revocation feed vouches that no revocation is missed; 0 means the verification cache is off."}, []string{"feed"}),
	}
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.httpInFlight, m.httpErrors, m.httpRateLimited,
		m.logins, m.registered, m.merged, m.wechatCalls, m.wechatTime, m.tokenFetches, m.tokenFetch,
		m.verifications, m.feedLag, m.feedLive} {
		if err := p.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Middleware measures every request: count, duration, error code and
// rate limiting, labelled with the route's template.
func (m *Metrics) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		m.httpInFlight.Inc()
		defer m.httpInFlight.Dec()
		httpserver.RenderError(c, c.Next())
		route := httpserver.RouteOf(c)
		if route == "" {
			route = "unmatched"
		}
		method := methodLabel(c.Method())
		status := c.Response().StatusCode()
		m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		m.httpDuration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		if code := httpserver.ErrorCode(c); code != "" {
			m.httpErrors.WithLabelValues(route, code).Inc()
		}
		if status == fiber.StatusTooManyRequests {
			by := "service"
			if platform, kind, ok := provider.Classify(httpserver.ErrorOf(c)); ok && kind == provider.KindRateLimited {
				by = platform
			}
			m.httpRateLimited.WithLabelValues(route, by).Inc()
		}
		return nil
	}
}

// methodLabel bounds the method label to the methods HTTP defines. It
// returns the constant, never the request's string: Fiber's strings alias
// buffers that are reused after the request, and a label is kept.
func methodLabel(method string) string {
	for _, m := range methods {
		if m == method {
			return m
		}
	}
	return "OTHER"
}

var methods = []string{fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch,
	fiber.MethodDelete, fiber.MethodOptions, fiber.MethodConnect, fiber.MethodTrace}

// platform names the platform of a configured appid ("" when unknown).
func (m *Metrics) platform(appid string) string {
	if a, ok := m.apps.Find(appid); ok {
		return a.Platform
	}
	return ""
}

// LoginDone counts a login request (auth.LoginObserver).
func (m *Metrics) LoginDone(appid, outcome string) {
	m.logins.WithLabelValues(m.platform(appid), appid, outcome).Inc()
}

// WeChatCalled counts a WeChat call (wechat.Observer).
func (m *Metrics) WeChatCalled(appid, path, result string, d time.Duration) {
	m.wechatCalls.WithLabelValues(appid, path, result).Inc()
	m.wechatTime.WithLabelValues(appid, path).Observe(d.Seconds())
}

// TokenFetched counts an access-token fetch (platformtoken.Observer).
func (m *Metrics) TokenFetched(appid string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	platform := m.platform(appid)
	m.tokenFetches.WithLabelValues(platform, appid, result).Inc()
	m.tokenFetch.WithLabelValues(platform, appid).Observe(d.Seconds())
}

// Verified counts an access-token check (token.Observer).
func (m *Metrics) Verified(strategy string, cache token.CacheOutcome, result string) {
	m.verifications.WithLabelValues(strategy, string(cache), result).Inc()
}

// RevocationReceived records the feed's lag (token.Observer).
func (m *Metrics) RevocationReceived(feed string, lag time.Duration) {
	m.feedLag.WithLabelValues(feed).Observe(lag.Seconds())
}

// FeedLive records the feed's state (token.Observer).
func (m *Metrics) FeedLive(feed string, live bool) {
	v := 0.0
	if live {
		v = 1
	}
	m.feedLive.WithLabelValues(feed).Set(v)
}

// UserEvent counts registrations and merges (a user.Listener).
func (m *Metrics) UserEvent(_ context.Context, e user.Event) {
	switch e := e.(type) {
	case user.Registered:
		m.registered.WithLabelValues(e.Identity.Provider, e.Identity.AppID).Inc()
	case user.Merged:
		m.merged.Inc()
	}
}

// PoolParams are RegisterPools' dependencies, all optional.
type PoolParams struct {
	fx.In
	Registerer prometheus.Registerer
	DB         *sql.DB                 `optional:"true"`
	Redis      goredis.UniversalClient `optional:"true"`
	Strategy   token.Strategy          `optional:"true"`
}

// RegisterPools exports the statistics of the database pool (go_sql_*,
// db_name="wxlogin"), of the Redis pool (wxlogin_redis_pool_*) and the size
// of the verification cache, for those the application has.
func RegisterPools(p PoolParams) error {
	var cs []prometheus.Collector
	if p.DB != nil {
		cs = append(cs, collectors.NewDBStatsCollector(p.DB, "wxlogin"))
	}
	if p.Redis != nil {
		cs = append(cs, newRedisCollector(p.Redis))
	}
	if c, ok := p.Strategy.(*token.Cached); ok {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "token_cache_entries",
			Help: "Verified access tokens held in this instance's cache."}, func() float64 { return float64(c.Len()) }))
	}
	for _, c := range cs {
		if err := p.Registerer.Register(c); err != nil {
			return err
		}
	}
	return nil
}
