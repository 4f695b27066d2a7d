package metrics_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/metrics"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

// TestRateLimitedSaysWhose: a 429 of this service's own limits and one
// passed on from a platform's quota are told apart.
func TestRateLimitedSaysWhose(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Params{Registerer: reg})
	require.NoError(t, err)
	app := httpserver.NewApp(config.HTTP{}, zap.NewNop())
	app.Use(m.Middleware())
	app.Post("/api/v1/limited/:id", func(c *fiber.Ctx) error {
		return &httpserver.Error{Status: fiber.StatusTooManyRequests, Code: "rate_limited", Message: "slow down", RetryAfter: 1}
	})
	app.Post("/api/v1/quota", func(c *fiber.Ctx) error {
		return &wechat.Error{Path: "/sns/jscode2session", Code: 45011, Message: "api minute-quota reach limit"}
	})
	for _, path := range []string{"/api/v1/limited/1", "/api/v1/limited/2", "/api/v1/quota"} {
		resp, err := app.Test(httptest.NewRequest("POST", path, nil), -1)
		require.NoError(t, err)
		require.Equal(t, 429, resp.StatusCode)
		require.NotEmpty(t, resp.Header.Get("Retry-After"))
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP wxlogin_http_rate_limited_total 429 answers, by route template and by whose limit: "service" (this service's rate limits) or the platform whose quota was reached ("wechat", …).
# TYPE wxlogin_http_rate_limited_total counter
wxlogin_http_rate_limited_total{by="service",route="/api/v1/limited/:id"} 2
wxlogin_http_rate_limited_total{by="wechat",route="/api/v1/quota"} 1
`), "wxlogin_http_rate_limited_total"))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP wxlogin_http_errors_total Error answers, by route template and error code (the body's error.code).
# TYPE wxlogin_http_errors_total counter
wxlogin_http_errors_total{code="rate_limited",route="/api/v1/limited/:id"} 2
wxlogin_http_errors_total{code="rate_limited",route="/api/v1/quota"} 1
`), "wxlogin_http_errors_total"))
}

func TestBuildInfo(t *testing.T) {
	reg := metrics.NewRegistry()
	n, err := testutil.GatherAndCount(reg, "wxlogin_build_info", "go_goroutines", "process_start_time_seconds")
	require.NoError(t, err)
	require.Equal(t, 3, n)
}
