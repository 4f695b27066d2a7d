// Command app is the wxlogin service and the composition root: it lists the
// modules and holds no business logic.
//
//	go run ./app            serve the HTTP API (the default command)
//	go run ./app emulator   run the WeChat emulator alone
//	go run ./app migrate    create or update the database schema
//
// Configuration comes from config/config.yaml (or APP_CONFIG) and APP_*
// environment variables; with none, it runs in development on SQLite with
// the built-in WeChat emulator.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/admin"
	"github.com/wxlogin/wxlogin/modules/alipay"
	"github.com/wxlogin/wxlogin/modules/alipay/alipayemu"
	"github.com/wxlogin/wxlogin/modules/apidoc"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/avatar"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/douyin"
	"github.com/wxlogin/wxlogin/modules/douyin/douyinemu"
	"github.com/wxlogin/wxlogin/modules/emulator"
	"github.com/wxlogin/wxlogin/modules/example"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/log"
	"github.com/wxlogin/wxlogin/modules/metrics"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/profile"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/qq"
	"github.com/wxlogin/wxlogin/modules/qq/qqemu"
	"github.com/wxlogin/wxlogin/modules/ratelimit"
	"github.com/wxlogin/wxlogin/modules/redis"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/tracing"
	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechat"
	"github.com/wxlogin/wxlogin/modules/wechatpush"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: app [serve | emulator | migrate | help]

  serve      serve the HTTP API (default)
  emulator   run the WeChat emulator alone on APP_WECHAT_EMULATOR_ADDR
  migrate    create or update the database schema and exit

Configuration: config/config.yaml (or the file APP_CONFIG names) and APP_*
environment variables; see README.md.
`

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if cmd != "serve" && cmd != "emulator" && cmd != "migrate" {
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch cmd {
	case "emulator":
		return serveEmulator(cfg, stderr)
	case "migrate":
		return migrate(cfg, stdout, stderr)
	}
	app := fx.New(Options(cfg), fx.Invoke(quickStart))
	if err := app.Err(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	app.Run()
	return 0
}

// Options composes the service's modules for cfg. A team's own service
// lists the same modules plus its own (see README "Compose your own app").
func Options(cfg *config.Config, extra ...fx.Option) fx.Option {
	opts := []fx.Option{
		config.Static(cfg),
		log.Module,
		log.FxLogger,
		metrics.Module, // GET /metrics and /debug/pprof/ on APP_ADMIN_ADDR
		tracing.Module, // OpenTelemetry, when the OTEL_* variables ask for it
		database.Module,
		user.Module,
		provider.Module,
		ratelimit.Module, // abuse limits, and the budget of platform calls per app
		wechat.Module,
		platformtoken.Module,
		token.Module,
		httpserver.Module,
		auth.Module,
		profile.Module,
		avatar.Module,
		example.Module,
		admin.Module,      // routes only with APP_ADMIN_TOKEN
		wechatpush.Module, // routes for the apps with a push_token
		apidoc.Module,     // GET /openapi.json
	}
	for _, name := range configuredPlatforms(cfg) {
		opts = append(opts, platforms[name].provider)
		if cfg.WeChat.Emulator {
			opts = append(opts, platforms[name].emulator)
		}
	}
	if cfg.Redis.Enabled() {
		opts = append(opts, redis.Module)
	}
	if cfg.WeChat.Emulator {
		opts = append(opts, emulator.Module)
	}
	return fx.Options(append(opts, extra...)...)
}

// platforms are the modules of the platforms beside WeChat: the provider,
// and its emulator for development. An app of a platform brings its modules
// into the service; a new platform is one line here.
var platforms = map[string]struct{ provider, emulator fx.Option }{
	config.PlatformQQ:     {qq.Module, qqemu.Module},
	config.PlatformDouyin: {douyin.Module, douyinemu.Module},
	config.PlatformAlipay: {alipay.Module, alipayemu.Module},
}

// configuredPlatforms lists, in a stable order, the platforms beside WeChat
// that the configured apps name.
func configuredPlatforms(cfg *config.Config) []string {
	var out []string
	for _, name := range config.Platforms {
		if _, ok := platforms[name]; ok && len(cfg.Apps.Of(name)) > 0 {
			out = append(out, name)
		}
	}
	return out
}

func migrate(cfg *config.Config, stdout, stderr io.Writer) int {
	client, err := database.Open(cfg.Database)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := database.Migrate(ctx, client); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "schema migrated (%s)\n", cfg.Database.Driver)
	return 0
}

// emulatorMount builds a platform's emulator for the standalone emulator.
func emulatorMount(platform string, cfg *config.Config, log *zap.Logger) (emulator.Mount, error) {
	switch platform {
	case config.PlatformQQ:
		return qqemu.NewMount(cfg.Apps, log), nil
	case config.PlatformDouyin:
		return douyinemu.NewMount(cfg.Apps, log), nil
	case config.PlatformAlipay:
		return alipayemu.NewMount(cfg, log)
	}
	return emulator.Mount{}, fmt.Errorf("no emulator for platform %q", platform)
}

func serveEmulator(cfg *config.Config, stderr io.Writer) int {
	if !cfg.IsDevelopment() {
		fmt.Fprintln(stderr, "the emulator accepts any device and is refused in production (APP_ENV=production)")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := emulator.ConsoleLogger(stderr)
	var mounts []emulator.Mount
	for _, name := range configuredPlatforms(cfg) {
		m, err := emulatorMount(name, cfg, log)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		mounts = append(mounts, m)
	}
	opts := []emulator.Option{emulator.WithPushURL(cfg.HTTP.PublicURL)}
	if err := emulator.ServeWith(ctx, cfg.Apps, cfg.WeChat.EmulatorAddr, stderr, opts, mounts...); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
