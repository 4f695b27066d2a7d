package example_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/emulator"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/log"
	"github.com/wxlogin/wxlogin/modules/metrics"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

// README:begin

// couponMetrics are a business module's own metrics, registered on the
// service's registry: GET /metrics serves them next to wxlogin's.
type couponMetrics struct {
	redeemed *prometheus.CounterVec
}

func newCouponMetrics(reg prometheus.Registerer) *couponMetrics {
	return &couponMetrics{redeemed: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "shop_coupons_redeemed_total",
		Help: "Coupons redeemed, by kind.",
	}, []string{"kind"})} // bounded labels: a kind of coupon, never a user or a coupon id
}

// Coupons counts what its route does.
var Coupons = fx.Module("coupons",
	fx.Provide(
		newCouponMetrics,
		httpserver.AsRoute(func(guard *auth.Guard, m *couponMetrics) httpserver.Route {
			return httpserver.RouteFunc(func(app *fiber.App) {
				app.Post("/api/v1/coupons/welcome/redeem", guard.Handler(), func(c *fiber.Ctx) error {
					m.redeemed.WithLabelValues("welcome").Inc()
					return c.SendStatus(fiber.StatusNoContent)
				})
			})
		}),
	),
)

// README:end

// Example_metrics composes the service with metrics.Module and Coupons,
// redeems a coupon and reads the counter on the operator listener.
func Example_metrics() {
	dir, _ := os.MkdirTemp("", "metrics")
	defer os.RemoveAll(dir)
	env := map[string]string{
		"APP_DATA_DIR": dir, "APP_HTTP_ADDR": freeAddr(), "APP_WECHAT_EMULATOR_ADDR": freeAddr(), "APP_ADMIN_ADDR": freeAddr(),
		"APP_DATABASE_DSN": "file:metrics?mode=memory&cache=shared", "APP_TOKEN_SECRET": strings.Repeat("s", 32),
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		panic(err)
	}
	app := fx.New(
		config.Static(cfg), log.Module, metrics.Module, database.Module, user.Module, provider.Module,
		wechat.Module, platformtoken.Module, token.Module, httpserver.Module, auth.Module, emulator.Module,
		Coupons,
		fx.NopLogger,
	)
	if err := app.Start(context.Background()); err != nil {
		panic(err)
	}
	defer app.Stop(context.Background())

	var device struct{ Code string }
	post("http://"+cfg.WeChat.EmulatorAddr+"/emulator/login", `{"openid":"o-coupons"}`, &device)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	post("http://"+cfg.HTTP.Addr+"/api/v1/auth/login", `{"code":"`+device.Code+`"}`, &login)
	req, _ := http.NewRequest("POST", "http://"+cfg.HTTP.Addr+"/api/v1/coupons/welcome/redeem", nil)
	req.Header.Set("Authorization", "Bearer "+login.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	resp, err = http.Get("http://" + cfg.Operator.Addr + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "shop_coupons_redeemed_total") ||
			strings.HasPrefix(l, `wxlogin_http_requests_total{method="POST",route="/api/v1/coupons/welcome/redeem"`) {
			fmt.Println(l)
		}
	}
	// Output:
	// shop_coupons_redeemed_total{kind="welcome"} 1
	// wxlogin_http_requests_total{method="POST",route="/api/v1/coupons/welcome/redeem",status="204"} 1
}
