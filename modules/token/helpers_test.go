package token_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/token/tokentest"
)

const (
	testTTL        = time.Hour
	testRefreshTTL = 24 * time.Hour
)

// testConfig is a token section with fresh random keys.
func testConfig(t testing.TB, strategy, alg string) config.Token {
	t.Helper()
	k1, err := config.NewJWTKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	return config.Token{
		Strategy:        strategy,
		Secret:          testutil.RandomName("hs256-secret-") + testutil.RandomName("-"),
		TTL:             testTTL,
		RefreshTTL:      testRefreshTTL,
		Issuer:          "wxlogin-test",
		JWTAlg:          alg,
		JWTKeys:         k1,
		CacheSize:       1000,
		RevocationPoll:  50 * time.Millisecond,
		CleanupInterval: time.Minute,
	}
}

// kind is one way to build a strategy for the tests.
type kind struct {
	name     string
	strategy string
	alg      string
	// redisDeny keeps the jwt deny list in Redis (and needs Redis).
	redisDeny bool
}

var kinds = []kind{
	{name: "jwt-hs256", strategy: token.NameJWT, alg: token.AlgHS256},
	{name: "jwt-hs256-redisdeny", strategy: token.NameJWT, alg: token.AlgHS256, redisDeny: true},
	{name: "jwt-eddsa", strategy: token.NameJWT, alg: token.AlgEdDSA},
	{name: "db", strategy: token.NameDB},
	{name: "redis", strategy: token.NameRedis},
}

func (k kind) needsRedis() bool { return k.strategy == token.NameRedis || k.redisDeny }

// stores are what a strategy is built on.
type stores struct {
	client *ent.Client
	// batch is set on "mariadb+batch": sessions issued in one round trip.
	batch  *database.Batch
	rdb    redis.UniversalClient
	prefix string
	// stop makes the stores stop answering (set by openBreakable).
	stop []func()
}

// backendRedis and backendCluster name where the redis strategy runs.
const (
	backendRedis   = "redis"
	backendCluster = "redis-cluster"
	// backendBatch is MariaDB with the one-round-trip issue of production.
	backendBatch = "mariadb+batch"
)

func openStores(t testing.TB, k kind, backend string) stores {
	t.Helper()
	var s stores
	if backend == backendBatch {
		cfg := testutil.MariaDBConfig(t)
		s.client = testutil.Open(t, cfg)
		s.batch = openBatch(t, cfg)
	} else if k.strategy != token.NameRedis {
		s.client = testutil.Database(t, sqlBackend(backend))
	}
	if k.needsRedis() {
		if backend == backendCluster {
			s.rdb, s.prefix = testutil.RedisCluster(t)
		} else {
			s.rdb, s.prefix = testutil.Redis(t)
		}
	}
	return s
}

// openBreakable opens stores whose break func makes them stop answering:
// MariaDB and Redis through a proxy that is stopped, SQLite closed.
func openBreakable(t testing.TB, k kind, backend string) stores {
	t.Helper()
	var s stores
	if k.strategy != token.NameRedis {
		switch sqlBackend(backend) {
		case "sqlite":
			s.client = testutil.SQLite(t)
			s.stop = append(s.stop, func() { s.client.Close() })
		default:
			cfg := testutil.MariaDBConfig(t)
			p := testutil.NewProxy(t, testutil.MariaDBAddr)
			via := testutil.MariaDBVia(t, cfg, p.Addr())
			s.client = testutil.Open(t, via)
			if backend == backendBatch {
				s.batch = openBatch(t, via)
			}
			s.stop = append(s.stop, p.Stop)
		}
	}
	if k.needsRedis() {
		if backend == backendCluster {
			// A cluster client follows the cluster's own node addresses, so
			// a proxy cannot cut it off: close the client instead.
			s.rdb, s.prefix = testutil.RedisCluster(t)
			rdb := s.rdb
			s.stop = append(s.stop, func() { rdb.Close() })
		} else {
			cfg := testutil.RedisConfig(t)
			p := testutil.NewProxy(t, cfg.Addr)
			c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, DialTimeout: time.Second})
			t.Cleanup(func() { c.Close() })
			s.rdb, s.prefix = c, cfg.Prefix
			s.stop = append(s.stop, p.Stop)
		}
	}
	return s
}

func (s stores) breakAll() {
	for _, f := range s.stop {
		f()
	}
}

// build makes the strategy of kind k on s.
func build(t testing.TB, k kind, s stores, cfg config.Token, o token.Options) token.Strategy {
	t.Helper()
	o.Config = cfg
	o.Batch = s.batch
	var st token.Strategy
	var err error
	switch k.strategy {
	case token.NameJWT:
		keys, kerr := token.NewKeySet(cfg)
		if kerr != nil {
			t.Fatal(kerr)
		}
		var deny token.DenyList = token.NewDBDenyList(s.client)
		if k.redisDeny {
			deny = token.NewRedisDenyList(s.rdb, s.prefix)
		}
		var j *token.JWT
		if j, err = token.NewJWT(s.client, keys, deny, o); err == nil {
			t.Cleanup(j.Close)
			st = j
		}
	case token.NameDB:
		st, err = token.NewDB(s.client, o)
	case token.NameRedis:
		st, err = token.NewRedis(s.rdb, s.prefix, o)
	}
	if err != nil {
		t.Fatalf("build %s: %v", k.name, err)
	}
	return st
}

func subjectsFor(s stores) func(testing.TB) token.Subject {
	if s.client != nil {
		return tokentest.EntSubjects(s.client)
	}
	return tokentest.Subjects()
}

// backendsFor lists the backends a kind runs on: the SQL backends, and for
// kinds that need Redis a single Redis and a Redis Cluster.
func backendsFor(k kind) []string {
	if k.strategy == token.NameRedis {
		return []string{backendRedis, backendCluster}
	}
	if k.redisDeny {
		return []string{"mariadb", backendCluster}
	}
	return append(append([]string{}, testutil.Backends...), backendBatch)
}

func openBatch(t testing.TB, cfg config.Database) *database.Batch {
	t.Helper()
	b, err := database.OpenBatch(cfg)
	if err != nil || b == nil {
		t.Fatalf("open the batch pool: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// sqlBackend is the SQL database a backend name implies.
func sqlBackend(backend string) string {
	if backend == backendCluster || backend == backendRedis || backend == backendBatch {
		return "mariadb"
	}
	return backend
}
