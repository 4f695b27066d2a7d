package example_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/emulator"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/log"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechat"
)

// README:begin

// Orders is your own business module: its routes sit behind the auth
// middleware and read the Principal (who the token says the caller is).
var Orders = fx.Module("orders",
	fx.Provide(httpserver.AsRoute(func(guard *auth.Guard) httpserver.Route {
		return httpserver.RouteFunc(func(app *fiber.App) {
			app.Get("/api/v1/orders", guard.Handler(), func(c *fiber.Ctx) error {
				p, _ := auth.PrincipalOf(c)
				return c.JSON(fiber.Map{"user_id": p.UserID, "orders": []string{}})
			})
		})
	})),
)

// auditedStore replaces one piece of wxlogin: it wraps the user store to
// record every login in your own audit trail.
type auditedStore struct {
	user.Store
}

func (s auditedStore) Login(ctx context.Context, in user.LoginInput) (*user.LoginResult, error) {
	r, err := s.Store.Login(ctx, in)
	if err == nil {
		fmt.Printf("audit: user %d logged in\n", r.User.ID)
	}
	return r, err
}

// newService composes wxlogin's modules with yours.
func newService(cfg *config.Config) *fx.App {
	return fx.New(
		config.Static(cfg), // or config.Module to read APP_* variables
		log.Module,
		database.Module,
		user.Module,
		provider.Module, // resolves an appid to its app and platform
		wechat.Module,
		platformtoken.Module,
		token.Module, // jwt, db or redis: APP_TOKEN_STRATEGY decides
		httpserver.Module,
		auth.Module,
		emulator.Module, // development only: the built-in WeChat
		Orders,
		fx.Decorate(func(s user.Store) user.Store { return auditedStore{Store: s} }),
		fx.NopLogger,
	)
}

// README:end

func freeAddr() string { return testutil.FreeAddr() }

func post(url string, body string, out any) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		panic(err)
	}
}

// Example_compose boots the composition above, logs a device in through the
// emulator and calls the business route with the token.
func Example_compose() {
	dir, _ := os.MkdirTemp("", "compose")
	defer os.RemoveAll(dir)
	env := map[string]string{
		"APP_DATA_DIR": dir, "APP_HTTP_ADDR": freeAddr(), "APP_WECHAT_EMULATOR_ADDR": freeAddr(),
		"APP_DATABASE_DSN": "file:compose?mode=memory&cache=shared", "APP_TOKEN_SECRET": strings.Repeat("s", 32),
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		panic(err)
	}
	app := newService(cfg)
	if err := app.Start(context.Background()); err != nil {
		panic(err)
	}
	defer app.Stop(context.Background())

	var device struct{ Code string }
	post("http://"+cfg.WeChat.EmulatorAddr+"/emulator/login", `{"openid":"o-compose"}`, &device)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	post("http://"+cfg.HTTP.Addr+"/api/v1/auth/login", `{"code":"`+device.Code+`"}`, &login)

	req, _ := http.NewRequest("GET", "http://"+cfg.HTTP.Addr+"/api/v1/orders", nil)
	req.Header.Set("Authorization", "Bearer "+login.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var orders map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&orders)
	fmt.Println(resp.StatusCode, orders["user_id"], orders["orders"])
	// Output:
	// audit: user 1 logged in
	// 200 1 []
}
