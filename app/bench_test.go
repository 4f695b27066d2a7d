package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	jwtware "github.com/gofiber/contrib/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// benchRoutes adds the measured routes: the same trivial handler, bare and
// behind the auth middleware.
var benchRoutes = fx.Provide(httpserver.AsRoute(func(g *auth.Guard) httpserver.Route {
	return httpserver.RouteFunc(func(app *fiber.App) {
		app.Get("/bench/bare", benchHandler)
		app.Get("/bench/guarded", g.Handler(), benchHandler)
	})
}))

func benchHandler(c *fiber.Ctx) error { return c.SendString("ok") }

// hammer sends GET path with the bearer token from parallel clients over
// loopback and returns the requests per second it achieved.
func hammer(b *testing.B, addr, path, bearer string) float64 {
	b.Helper()
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 512, ReadTimeout: 10 * time.Second}
	url := "http://" + addr + path
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		for pb.Next() {
			if err := client.Do(req, resp); err != nil {
				b.Errorf("request: %v", err)
				return
			}
			if resp.StatusCode() != 200 {
				b.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
	b.StopTimer()
	rps := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rps, "req/s")
	return rps
}

// BenchmarkHotPath measures what token verification costs a business
// request: a bare route, the same route behind each strategy as the service
// composes it (cache on, as by default; and off), and behind
// gofiber/contrib/jwt for comparison. It prints the ratios to the bare route.
func BenchmarkHotPath(b *testing.B) {
	type variant struct {
		name  string
		setup func(b *testing.B) (addr, path, bearer string)
	}
	service := func(strategy string, cacheSize string) func(b *testing.B) (string, string, string) {
		return func(b *testing.B) (string, string, string) {
			vars := strategyVars(b, strategy)
			vars["APP_TOKEN_CACHE_SIZE"] = cacheSize
			vars["APP_HTTP_ADDR"] = freeAddr(b)
			vars["APP_WECHAT_EMULATOR_ADDR"] = freeAddr(b)
			cfg := testutil.Config(b, vars)
			s := bootLogged(b, cfg, zap.NewNop(), nil, benchRoutes)
			_, r := s.login("bench-user")
			return strings.TrimPrefix(s.api, "http://"), "/bench/guarded", r.Str("access_token")
		}
	}
	variants := []variant{
		{"bare", func(b *testing.B) (string, string, string) {
			s := bootLogged(b, testutil.Config(b, map[string]string{
				"APP_HTTP_ADDR": freeAddr(b), "APP_WECHAT_EMULATOR_ADDR": freeAddr(b),
			}), zap.NewNop(), nil, benchRoutes)
			return strings.TrimPrefix(s.api, "http://"), "/bench/bare", ""
		}},
		{"jwt", service("jwt", "10000")},
		{"db", service("db", "10000")},
		{"redis", service("redis", "10000")},
		{"jwt-nocache", service("jwt", "0")},
		{"db-nocache", service("db", "0")},
		{"redis-nocache", service("redis", "0")},
		{"contrib-jwt", func(b *testing.B) (string, string, string) {
			secret := []byte(strings.Repeat("k", 32))
			app := httpserver.NewApp(config.HTTP{}, zap.NewNop())
			app.Get("/bench/guarded", jwtware.New(jwtware.Config{SigningKey: jwtware.SigningKey{JWTAlg: "HS256", Key: secret}}), benchHandler)
			addr := freeAddr(b)
			go func() { _ = app.Listen(addr) }()
			b.Cleanup(func() { _ = app.Shutdown() })
			testutil.Eventually(b, 5*time.Second, func() bool {
				_, _, err := fasthttp.Get(nil, "http://"+addr+"/healthz")
				return err == nil
			}, "contrib-jwt app listening")
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": "1", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
			}).SignedString(secret)
			if err != nil {
				b.Fatal(err)
			}
			return addr, "/bench/guarded", tok
		}},
	}
	type target struct{ addr, path, bearer string }
	targets := make([]target, len(variants))
	for i, v := range variants {
		// Set up once, on the parent: sub-benchmarks run several rounds.
		addr, path, bearer := v.setup(b)
		targets[i] = target{addr, path, bearer}
	}
	// Interleave the variants over a few rounds and keep each one's best, so
	// that order and a noisy neighbour weigh on all of them alike.
	results := map[string]float64{}
	for round := 1; round <= benchRounds; round++ {
		for i, v := range variants {
			b.Run(fmt.Sprintf("%s/round-%d", v.name, round), func(b *testing.B) {
				rps := hammer(b, targets[i].addr, targets[i].path, targets[i].bearer)
				results[v.name] = max(results[v.name], rps)
			})
		}
	}
	bare := results["bare"]
	if bare == 0 {
		return
	}
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return results[names[i]] > results[names[j]] })
	var out strings.Builder
	fmt.Fprintf(&out, "\nhot path, one run (best of %d interleaved rounds), loopback, %d parallel clients; ratio = req/s ÷ bare route:\n", benchRounds, 16*runtime.GOMAXPROCS(0))
	for _, n := range names {
		fmt.Fprintf(&out, "  %-14s %9.0f req/s  %.2f×\n", n, results[n], results[n]/bare)
	}
	fmt.Fprint(os.Stdout, out.String())
}

// benchRounds is how many times each variant is measured.
const benchRounds = 3
