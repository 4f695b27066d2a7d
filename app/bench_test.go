package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	jwtware "github.com/gofiber/contrib/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	goredis "github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/token"
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

// benchServiceEnv carries a benchSpec to this test binary started as a
// service process (see TestMain): the service and the load generator do
// not share one Go runtime, as in production.
const benchServiceEnv = "WXLOGIN_BENCH_SERVICE"

// benchSpec is what a service process serves.
type benchSpec struct {
	// Vars configure the wxlogin service (APP_*).
	Vars map[string]string `json:"vars"`
	// ContribJWTSecret, when set, serves gofiber/contrib/jwt instead, for
	// comparison, on Addr.
	ContribJWTSecret string `json:"contrib_jwt_secret,omitempty"`
	Addr             string `json:"addr,omitempty"`
}

// runBenchService serves spec until its stdin closes (the benchmark ends or
// dies), printing "READY <addr>" once it listens.
func runBenchService(raw string) int {
	var spec benchSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "bench service:", err)
		return 2
	}
	ctx := context.Background()
	var addr string
	var stop func()
	if spec.ContribJWTSecret != "" {
		app := httpserver.NewApp(config.HTTP{}, zap.NewNop())
		app.Get("/bench/guarded", jwtware.New(jwtware.Config{SigningKey: jwtware.SigningKey{JWTAlg: "HS256", Key: []byte(spec.ContribJWTSecret)}}), benchHandler)
		app.Get("/bench/bare", benchHandler)
		ln, err := net.Listen("tcp", spec.Addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench service:", err)
			return 1
		}
		go func() { _ = app.Listener(ln) }()
		addr, stop = spec.Addr, func() { _ = app.Shutdown() }
	} else {
		dir, err := os.MkdirTemp("", "wxlogin-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench service:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		env := map[string]string{"APP_DATA_DIR": dir, "APP_ADMIN_ADDR": "127.0.0.1:0"} // metrics on, as in production; several service processes side by side
		for k, v := range spec.Vars {
			env[k] = v
		}
		cfg, err := config.LoadFrom(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench service:", err)
			return 1
		}
		var srv *httpserver.Server
		app := fx.New(Options(cfg), benchRoutes,
			fx.Decorate(func(*zap.Logger) *zap.Logger { return zap.NewNop() }),
			fx.Populate(&srv), fx.NopLogger)
		if err := app.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "bench service:", err)
			return 1
		}
		addr, stop = srv.Addr(), func() { _ = app.Stop(ctx) }
	}
	// WXLOGIN_BENCH_PROFILE=<dir>: each service process writes its CPU
	// profile there (<pid>.pprof) when it stops.
	if dir := os.Getenv("WXLOGIN_BENCH_PROFILE"); dir != "" {
		f, err := os.Create(fmt.Sprintf("%s/%d.pprof", dir, os.Getpid()))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	fmt.Printf("READY %s\n", addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
	stop()
	return 0
}

// benchProc is a service process.
type benchProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startService starts this test binary as a service process serving spec.
func startService(b *testing.B, spec benchSpec) *benchProc {
	b.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServiceEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &benchProc{cmd: cmd, stdin: stdin}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- addr
			}
		}
	}()
	select {
	case p.addr = <-ready:
	case <-time.After(60 * time.Second):
		b.Fatal("the service process did not start")
	}
	return p
}

// rssMiB is the process's resident memory.
func (p *benchProc) rssMiB() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// cpuTime is the CPU time (user + system) the process has used so far.
func (p *benchProc) cpuTime() time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which is in parentheses).
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// benchClients is how many clients send requests at once.
const benchClients = 32

// hammer sends GET path from benchClients parallel keep-alive clients, each
// request with a bearer picked uniformly at random from bearers (none when
// empty), and returns the requests per second achieved.
func hammer(b *testing.B, addr, path string, bearers []string) float64 {
	b.Helper()
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 2 * benchClients, ReadTimeout: 10 * time.Second}
	url := "http://" + addr + path
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		for pb.Next() {
			if len(bearers) > 0 {
				req.Header.Set("Authorization", bearers[rng.IntN(len(bearers))])
			}
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

// warm sends every bearer once (from benchClients clients), so that a
// measurement starts from the steady state of that population.
func warm(b *testing.B, addr string, bearers []string) {
	b.Helper()
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 2 * benchClients, ReadTimeout: 10 * time.Second}
	errs := make(chan error, benchClients)
	for w := range benchClients {
		go func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + addr + "/bench/guarded")
			for i := w; i < len(bearers); i += benchClients {
				req.Header.Set("Authorization", bearers[i])
				if err := client.Do(req, resp); err != nil {
					errs <- err
					return
				}
				if resp.StatusCode() != 200 {
					errs <- fmt.Errorf("warm-up: status %d: %s", resp.StatusCode(), resp.Body())
					return
				}
			}
			errs <- nil
		}()
	}
	for range benchClients {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}

// benchPopulations are the numbers of distinct logged-in users (one token
// each) whose tokens arrive in random order; WXLOGIN_BENCH_POPULATIONS
// (comma-separated) overrides them for a quick run.
func benchPopulations(b *testing.B) []int {
	spec := os.Getenv("WXLOGIN_BENCH_POPULATIONS")
	if spec == "" {
		return []int{1, 20_000, 200_000}
	}
	var out []int
	for _, s := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			b.Fatalf("WXLOGIN_BENCH_POPULATIONS: %q is not a positive number", s)
		}
		out = append(out, n)
	}
	return out
}

// seedUsers creates n users, each with one WeChat mini-program identity, in
// bulk and returns their subjects.
func seedUsers(b *testing.B, client *ent.Client, appID string, n int) []token.Subject {
	b.Helper()
	ctx := context.Background()
	out := make([]token.Subject, 0, n)
	for start := 0; start < n; start += 2000 {
		end := min(start+2000, n)
		builders := make([]*ent.UserCreate, 0, end-start)
		for range end - start {
			builders = append(builders, client.User.Create())
		}
		users, err := client.User.CreateBulk(builders...).Save(ctx)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]*ent.IdentityCreate, len(users))
		for i, u := range users {
			openid := fmt.Sprintf("o-bench-%08d", start+i)
			ids[i] = client.Identity.Create().SetProvider("wechat").SetKind("miniprogram").SetAppid(appID).SetOpenid(openid).SetUserID(u.ID)
			out = append(out, token.Subject{UserID: u.ID, Provider: "wechat", AppID: appID, OpenID: openid, Client: token.ClientMiniProgram, Device: "bench"})
		}
		if err := client.Identity.CreateBulk(ids...).Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// seedTokens issues one session per subject through a strategy of the
// service's own configuration (same secret, database and Redis) and
// returns "Bearer <access token>" for each.
func seedTokens(b *testing.B, cfg *config.Config, client *ent.Client, rdb goredis.UniversalClient, subjects []token.Subject) []string {
	b.Helper()
	o := token.Options{Config: cfg.Token}
	var st token.BulkIssuer
	var err error
	switch cfg.Token.Strategy {
	case token.NameJWT:
		keys, kerr := token.NewKeySet(cfg.Token)
		if kerr != nil {
			b.Fatal(kerr)
		}
		var j *token.JWT
		j, err = token.NewJWT(client, keys, token.NewDBDenyList(client), o)
		if err == nil {
			defer j.Close()
		}
		st = j
	case token.NameDB:
		st, err = token.NewDB(client, o)
	case token.NameRedis:
		st, err = token.NewRedis(rdb, cfg.Redis.Prefix, o)
	}
	if err != nil {
		b.Fatal(err)
	}
	pairs, err := st.IssueMany(context.Background(), subjects)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = "Bearer " + p.AccessToken
	}
	return out
}

// BenchmarkHotPath measures what the token check costs a business request
// the way production runs: the service in its own process (this test
// binary re-executed, the optimized build) on MariaDB (and Redis for the
// redis strategy), a trivial route bare and behind each strategy as the
// service composes it (default cache), benchClients parallel keep-alive
// clients, and populations of 1, 20 000 and 200 000 logged-in users whose
// tokens arrive uniformly at random. Each variant is warmed up with one pass
// over its tokens, then measured over interleaved rounds (best of each).
// It prints requests per second, the ratio to the bare route, and each
// service process's resident memory.
//
//	task bench   (go test -run '^$' -bench HotPath -benchtime 1s -timeout 40m ./app)
//
// WXLOGIN_BENCH_POPULATIONS (e.g. "1,20000"), WXLOGIN_BENCH_ONLY (a
// substring of the variants' names, e.g. "jwt") and WXLOGIN_BENCH_ROUNDS
// narrow a run down.
func BenchmarkHotPath(b *testing.B) {
	pops := benchPopulations(b)
	maxPop := 0
	for _, n := range pops {
		maxPop = max(maxPop, n)
	}
	dbCfg := testutil.MariaDBConfig(b)
	redisCfg := testutil.RedisConfig(b)
	secret := testutil.RandomName("bench-secret-") + testutil.RandomName("-")
	base := map[string]string{
		"APP_DATABASE_DRIVER": "mysql", "APP_DATABASE_DSN": dbCfg.DSN, "APP_DATABASE_AUTOMIGRATE": "false",
		"APP_TOKEN_SECRET": secret, "APP_WECHAT_EMULATOR": "false",
	}
	varsFor := func(strategy string, extra ...string) map[string]string {
		v := map[string]string{"APP_TOKEN_STRATEGY": strategy, "APP_HTTP_ADDR": freeAddr(b)}
		for k, val := range base {
			v[k] = val
		}
		if strategy == token.NameRedis {
			v["APP_REDIS_ADDR"], v["APP_REDIS_PREFIX"] = redisCfg.Addr, redisCfg.Prefix
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v[extra[i]] = extra[i+1]
		}
		return v
	}

	start := time.Now()
	client := testutil.Open(b, dbCfg)
	rdb := goredis.NewClient(&goredis.Options{Addr: redisCfg.Addr})
	b.Cleanup(func() { rdb.Close() })
	jwtCfg := testutil.Config(b, varsFor(token.NameJWT))
	users := seedUsers(b, client, jwtCfg.WeChat.AppID, maxPop)
	bearers := map[string][]string{}
	for _, strategy := range []string{token.NameJWT, token.NameDB, token.NameRedis} {
		bearers[strategy] = seedTokens(b, testutil.Config(b, varsFor(strategy)), client, rdb, users)
	}
	fmt.Fprintf(os.Stdout, "seeded %d users and %d tokens per strategy in %s\n", maxPop, maxPop, time.Since(start).Round(time.Second))

	type variant struct {
		name    string
		path    string
		bearers []string
		proc    *benchProc
	}
	var variants []variant
	only := os.Getenv("WXLOGIN_BENCH_ONLY") // a quick run of some variants (a substring of their names)
	add := func(name, path string, toks []string, spec benchSpec) {
		if name != "bare" && only != "" && !strings.Contains(name, only) {
			return
		}
		variants = append(variants, variant{name: name, path: path, bearers: toks, proc: startService(b, spec)})
	}
	add("bare", "/bench/bare", nil, benchSpec{Vars: varsFor(token.NameJWT)})
	for _, strategy := range []string{token.NameJWT, token.NameDB, token.NameRedis} {
		for _, n := range pops {
			add(fmt.Sprintf("%s, %d users", strategy, n), "/bench/guarded", bearers[strategy][:n], benchSpec{Vars: varsFor(strategy)})
		}
	}
	add(fmt.Sprintf("jwt, cache off, %d users", maxPop), "/bench/guarded", bearers[token.NameJWT],
		benchSpec{Vars: varsFor(token.NameJWT, "APP_TOKEN_CACHE_SIZE", "0")})
	contribSecret := strings.Repeat("k", 32)
	contribTok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "1", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	}).SignedString([]byte(contribSecret))
	if err != nil {
		b.Fatal(err)
	}
	add("gofiber/contrib/jwt, 1 token", "/bench/guarded", []string{"Bearer " + contribTok},
		benchSpec{ContribJWTSecret: contribSecret, Addr: freeAddr(b)})

	for _, v := range variants {
		if len(v.bearers) > 0 {
			warm(b, v.proc.addr, v.bearers)
		}
	}
	// Interleave the variants over a few rounds and keep each one's best, so
	// that order and a noisy neighbour weigh on all of them alike.
	rounds := benchRounds
	if n, err := strconv.Atoi(os.Getenv("WXLOGIN_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	// The service's own CPU time per request depends far less on what else
	// runs on the machine than requests per second do.
	results := map[string]float64{}
	cpu := map[string]time.Duration{}
	for round := 1; round <= rounds; round++ {
		for _, v := range variants {
			b.Run(fmt.Sprintf("%s/round-%d", v.name, round), func(b *testing.B) {
				before := v.proc.cpuTime()
				rps := hammer(b, v.proc.addr, v.path, v.bearers)
				results[v.name] = max(results[v.name], rps)
				if b.N >= 10_000 {
					per := (v.proc.cpuTime() - before) / time.Duration(b.N)
					b.ReportMetric(float64(per.Nanoseconds())/1000, "service-µs/req")
					if c, ok := cpu[v.name]; !ok || per < c {
						cpu[v.name] = per
					}
				}
			})
		}
	}
	bare := results["bare"]
	if bare == 0 {
		return
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nhot path, one run (best of %d interleaved rounds); service in its own process on MariaDB (+Redis for redis), "+
		"%d parallel keep-alive clients over loopback, tokens uniformly at random; ratio = req/s ÷ bare route:\n", rounds, benchClients)
	fmt.Fprintf(&out, "  %-34s %9s  %6s  %16s  %s\n", "route", "req/s", "ratio", "service CPU/req", "service RSS")
	for _, v := range variants {
		fmt.Fprintf(&out, "  %-34s %9.0f  %5.2f×  %13.1f µs  %4.0f MiB\n", v.name, results[v.name], results[v.name]/bare,
			float64(cpu[v.name].Nanoseconds())/1000, v.proc.rssMiB())
	}
	fmt.Fprint(os.Stdout, out.String())
}

// benchRounds is how many times each variant is measured.
const benchRounds = 3
