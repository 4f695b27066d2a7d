// Package testutil gives tests real databases: an in-memory SQLite, a fresh
// MariaDB or PostgreSQL database per test, a Redis key prefix per test. When a service is
// down, tests skip on a developer machine and fail under CI (CI=true).
package testutil

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for the admin connection
	"github.com/redis/go-redis/v9"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/modules/database"
)

// MariaDBAddr, PostgresAddr and RedisAddr are where the services run on
// development machines and in CI; WXLOGIN_TEST_MYSQL_ADDR,
// WXLOGIN_TEST_POSTGRES_ADDR and WXLOGIN_TEST_REDIS_ADDR override.
var (
	MariaDBAddr  = envOr("WXLOGIN_TEST_MYSQL_ADDR", "127.0.0.1:3306")
	PostgresAddr = envOr("WXLOGIN_TEST_POSTGRES_ADDR", "127.0.0.1:5432")
	RedisAddr    = envOr("WXLOGIN_TEST_REDIS_ADDR", "127.0.0.1:6379")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Unavailable stops a test whose service is missing: a skip on a developer
// machine, a failure under CI, where every test must run.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required under CI and is not reachable: %v", service, err)
	}
	t.Skipf("%s not reachable (%v); set CI=true to make this a failure", service, err)
}

// RandomName returns a short random lowercase hex name with a prefix.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// SQLiteConfig is a database section for a private in-memory SQLite.
func SQLiteConfig() config.Database {
	return config.Database{
		Driver:      "sqlite",
		DSN:         "file:" + RandomName("mem") + "?mode=memory&cache=shared",
		AutoMigrate: true,
	}
}

// SQLite returns a migrated client on a private in-memory database.
func SQLite(t testing.TB) *ent.Client {
	t.Helper()
	return open(t, SQLiteConfig())
}

// MariaDBConfig creates a fresh database on the test MariaDB, dropped when
// the test ends, and returns a database section pointing at it.
func MariaDBConfig(t testing.TB) config.Database {
	t.Helper()
	admin, err := sql.Open("mysql", "root@tcp("+MariaDBAddr+")/?timeout=3s")
	if err != nil {
		Unavailable(t, "MariaDB", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		Unavailable(t, "MariaDB", err)
	}
	name := RandomName("wxtest_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`")
		admin.Close()
	})
	mc := mysql.NewConfig()
	mc.User = "root"
	mc.Net = "tcp"
	mc.Addr = MariaDBAddr
	mc.DBName = name
	mc.ParseTime = true
	return config.Database{Driver: "mysql", DSN: mc.FormatDSN(), AutoMigrate: true}
}

// MariaDB returns a migrated client on a fresh MariaDB database.
func MariaDB(t testing.TB) *ent.Client {
	t.Helper()
	return open(t, MariaDBConfig(t))
}

// PostgresUser is the role the tests connect as (trust authentication on
// the test server; it may create and drop databases).
const PostgresUser = "postgres"

// postgresAdmin is one small pool shared by every test of the process for
// CREATE/DROP DATABASE, rather than one connection held per running test.
var postgresAdmin = sync.OnceValue(func() *sql.DB {
	u := url.URL{Scheme: "postgres", User: url.User(PostgresUser), Host: PostgresAddr, Path: "/postgres",
		RawQuery: "sslmode=disable&connect_timeout=3"}
	db, _ := sql.Open("pgx", u.String()) // only parses; errors surface on use
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(1)
	return db
})

// PostgresConfig creates a fresh database on the test PostgreSQL, dropped
// (with its connections ended) when the test ends, and returns a database
// section pointing at it.
func PostgresConfig(t testing.TB) config.Database {
	t.Helper()
	admin := postgresAdmin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		Unavailable(t, "PostgreSQL", err)
	}
	name := RandomName("wxtest_")
	// template0 takes no connections, so parallel CREATE DATABASEs never
	// find their template busy (template1 may be, when someone uses psql).
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`" TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u := url.URL{Scheme: "postgres", User: url.User(PostgresUser), Host: PostgresAddr, Path: "/" + name,
		RawQuery: "sslmode=disable"}
	return config.Database{Driver: "postgres", DSN: u.String(), AutoMigrate: true}
}

// Postgres returns a migrated client on a fresh PostgreSQL database.
func Postgres(t testing.TB) *ent.Client {
	t.Helper()
	return open(t, PostgresConfig(t))
}

// Backends names the storage backends that contract suites run against.
var Backends = []string{"sqlite", "mariadb", "postgres"}

// ServerBackends are the Backends that are database servers, for tests
// whose point needs one (several instances, real concurrency).
var ServerBackends = []string{"mariadb", "postgres"}

// DatabaseConfig returns a database section for a backend named in
// Backends: a private in-memory SQLite or a fresh server database.
func DatabaseConfig(t testing.TB, backend string) config.Database {
	t.Helper()
	switch backend {
	case "sqlite":
		return SQLiteConfig()
	case "mariadb":
		return MariaDBConfig(t)
	case "postgres":
		return PostgresConfig(t)
	}
	t.Fatalf("unknown backend %q", backend)
	return config.Database{}
}

// Database returns a migrated client for a backend named in Backends.
func Database(t testing.TB, backend string) *ent.Client {
	t.Helper()
	return open(t, DatabaseConfig(t, backend))
}

func open(t testing.TB, cfg config.Database) *ent.Client {
	t.Helper()
	client, err := database.Open(cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Driver, err)
	}
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := database.Migrate(ctx, client); err != nil {
		t.Fatalf("migrate %s: %v", cfg.Driver, err)
	}
	return client
}

// RedisConfig returns a Redis section for the test Redis with a key prefix
// private to this test; the test's keys are deleted when it ends.
func RedisConfig(t testing.TB) config.Redis {
	t.Helper()
	cfg := config.Redis{Addr: RedisAddr, Prefix: RandomName("wxtest:") + ":"}
	c := redis.NewClient(&redis.Options{Addr: cfg.Addr})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		Unavailable(t, "Redis", err)
	}
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, cfg.Prefix+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return cfg
}

// Redis returns a client on the test Redis and this test's key prefix.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	cfg := RedisConfig(t)
	c := redis.NewClient(&redis.Options{Addr: cfg.Addr})
	t.Cleanup(func() { c.Close() })
	return c, cfg.Prefix
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, fmt.Sprintf(format, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Config loads a development configuration for tests from the given
// variables only (the process environment is ignored), with DataDir in a
// temporary directory.
func Config(t testing.TB, vars map[string]string) *config.Config {
	t.Helper()
	// The operator listener on a free port: tests run side by side.
	env := map[string]string{"APP_DATA_DIR": t.TempDir(), "APP_CONFIG": "", "APP_ADMIN_ADDR": "127.0.0.1:0"}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := config.LoadFrom(func(name string) (string, bool) {
		v, ok := env[name]
		if name == "APP_CONFIG" && v == "" {
			return "", false
		}
		return v, ok
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// Proxy forwards TCP connections to a service so that a test can make the
// service stop answering the way it happens: Freeze stops forwarding and
// keeps the connections, CloseAll cuts every connection, Stop also refuses
// new ones (a stopped service), Start accepts again.
type Proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	frozen bool
	delay  time.Duration
	cond   *sync.Cond
	conns  []net.Conn
}

// NewProxy starts a proxy to target on a free loopback port; it is stopped
// when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{target: target}
	p.cond = sync.NewCond(&p.mu)
	// Not an ephemeral port: Start binds it again after Stop, and in
	// between an outgoing connection must not be able to take it.
	ln, err := net.Listen("tcp", FreeAddr())
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.ln = ln
	go p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.frozen {
				p.cond.Wait()
			}
			delay := p.delay
			p.mu.Unlock()
			time.Sleep(delay)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Delay makes every write through the proxy wait d: a slow network, each
// round trip 2·d longer.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Freeze stops forwarding; connections stay open and silent.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// Thaw forwards again.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	p.frozen = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// CloseAll cuts every open connection; new ones are accepted.
func (p *Proxy) CloseAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Stop refuses new connections and cuts the open ones.
func (p *Proxy) Stop() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	p.Thaw()
	p.CloseAll()
}

// Start accepts connections again on the same address after Stop.
func (p *Proxy) Start(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

// MariaDBVia returns cfg (from MariaDBConfig) with its address replaced by
// addr, e.g. a Proxy's.
func MariaDBVia(t testing.TB, cfg config.Database, addr string) config.Database {
	t.Helper()
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	mc.Addr = addr
	mc.Timeout = 2 * time.Second
	cfg.DSN = mc.FormatDSN()
	return cfg
}

// PostgresVia returns cfg (from PostgresConfig) with its address replaced
// by addr, e.g. a Proxy's.
func PostgresVia(t testing.TB, cfg config.Database, addr string) config.Database {
	t.Helper()
	u, err := url.Parse(cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	cfg.DSN = u.String()
	return cfg
}

// Open returns a migrated client for cfg, closed when the test ends.
func Open(t testing.TB, cfg config.Database) *ent.Client {
	t.Helper()
	return open(t, cfg)
}
