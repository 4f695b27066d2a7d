package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// statusCounter counts the answers of a load by route and status.
type statusCounter struct {
	mu     sync.Mutex
	counts map[string]int
	bad    []string // answers that must never happen, with their body
}

func (s *statusCounter) add(route string, status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[fmt.Sprintf("%s %d", route, status)]++
	if status != 200 && status != 503 {
		s.bad = append(s.bad, fmt.Sprintf("%s → %d %s", route, status, body))
		return
	}
	if status == 503 {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error.Code != "service_unavailable" {
			s.bad = append(s.bad, fmt.Sprintf("%s → 503 with code %q", route, e.Error.Code))
		}
	}
}

// load sends /api/v1/me (with access) and logins (new codes) from workers
// until stop is closed. It does not use require: it runs off the test's
// goroutine.
func (s *service) load(workers int, access string, stop <-chan struct{}, c *statusCounter) *sync.WaitGroup {
	var wg sync.WaitGroup
	send := func(method, url, bearer string, body []byte) (int, []byte, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := s.http.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
			return resp.StatusCode, append([]byte("no Retry-After: "), b...), nil
		}
		return resp.StatusCode, b, nil
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if status, body, err := send("GET", s.api+"/api/v1/me", access, nil); err == nil {
					c.add("me", status, body)
				}
				if i%4 != 0 {
					continue
				}
				status, body, err := send("POST", s.emu+"/emulator/login", "", []byte(fmt.Sprintf(`{"openid":"load-%d-%d"}`, w, i)))
				if err != nil || status != 200 {
					continue
				}
				var d device
				_ = json.Unmarshal(body, &d)
				if status, body, err := send("POST", s.api+"/api/v1/auth/login", "", []byte(`{"code":"`+d.Code+`"}`)); err == nil {
					c.add("login", status, body)
				}
			}
		}()
	}
	return &wg
}

// TestDependencyOutage cuts the database (MariaDB, PostgreSQL) or Redis
// (the redis strategy) under load with a TCP proxy that stops and starts
// again: every answer during the outage is 503 service_unavailable with
// Retry-After — never a 500, never a 401 — and afterwards the same tokens
// work again (nobody was logged out) and new logins succeed.
func TestDependencyOutage(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) (map[string]string, *testutil.Proxy)
	}{
		{"mariadb", func(t *testing.T) (map[string]string, *testutil.Proxy) {
			db := testutil.MariaDBConfig(t)
			p := testutil.NewProxy(t, testutil.MariaDBAddr)
			return map[string]string{"APP_DATABASE_DRIVER": "mysql", "APP_DATABASE_DSN": testutil.MariaDBVia(t, db, p.Addr()).DSN}, p
		}},
		{"postgres", func(t *testing.T) (map[string]string, *testutil.Proxy) {
			db := testutil.PostgresConfig(t)
			p := testutil.NewProxy(t, testutil.PostgresAddr)
			return map[string]string{"APP_DATABASE_DRIVER": "postgres", "APP_DATABASE_DSN": testutil.PostgresVia(t, db, p.Addr()).DSN}, p
		}},
		{"redis", func(t *testing.T) (map[string]string, *testutil.Proxy) {
			r := testutil.RedisConfig(t)
			p := testutil.NewProxy(t, r.Addr)
			return map[string]string{"APP_TOKEN_STRATEGY": "redis", "APP_REDIS_ADDR": p.Addr(), "APP_REDIS_PREFIX": r.Prefix}, p
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vars, proxy := c.setup(t)
			s := boot(t, vars)
			_, r := s.login("outage-user")
			access, refresh := r.Str("access_token"), r.Str("refresh_token")
			s.remember(access, refresh)

			counts := &statusCounter{counts: map[string]int{}}
			stop := make(chan struct{})
			wg := s.load(4, access, stop, counts)

			proxy.Stop()
			var down reply
			testutil.Eventually(t, 20*time.Second, func() bool {
				down = s.call("GET", s.api+"/api/v1/me", access, nil)
				require.Contains(t, []int{200, 503}, down.Status, "during an outage: %s", down.Raw)
				return down.Status == 503
			}, "GET /api/v1/me answers 503 while %s is down", c.name)
			require.Equal(t, "service_unavailable", down.ErrorCode())
			require.NotEmpty(t, down.Header.Get("Retry-After"))
			for range 5 {
				d := s.wxLogin("outage-newcomer")
				l := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code})
				require.Equal(t, 503, l.Status, "a login while %s is down: %s", c.name, l.Raw)
				require.Equal(t, "service_unavailable", l.ErrorCode())
				require.NotEmpty(t, l.Header.Get("Retry-After"))
				me := s.call("GET", s.api+"/api/v1/me", access, nil)
				require.Equal(t, 503, me.Status, "%s", me.Raw)
			}

			// The outage lasts until the load has met it many times.
			testutil.Eventually(t, 60*time.Second, func() bool {
				counts.mu.Lock()
				defer counts.mu.Unlock()
				return counts.counts["me 503"]+counts.counts["login 503"] >= 40
			}, "the load meets the outage")

			proxy.Start(t)
			testutil.Eventually(t, 30*time.Second, func() bool {
				return s.call("GET", s.api+"/api/v1/me", access, nil).Status == 200
			}, "the same access token works again once %s is back", c.name)
			close(stop)
			wg.Wait()

			rr := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh})
			require.Equal(t, 200, rr.Status, "the same refresh token works: %s", rr.Raw)
			_, again := s.login("outage-user")
			require.Equal(t, r.User()["id"], again.User()["id"])

			t.Logf("answers under load: %v", counts.counts)
			require.Empty(t, counts.bad, "every answer was 200 or 503 service_unavailable with Retry-After")
			require.Positive(t, counts.counts["me 503"]+counts.counts["login 503"], "the load saw the outage")
		})
	}
}

// TestSilentDatabase: a database that accepts connections but stops
// answering (a partition, a hung server) is a 503 within the request's
// deadline, not a request that hangs; the service recovers when it
// answers again.
func TestSilentDatabase(t *testing.T) {
	for _, backend := range testutil.ServerBackends {
		t.Run(backend, func(t *testing.T) {
			db := testutil.DatabaseConfig(t, backend)
			var proxy *testutil.Proxy
			if backend == "mariadb" {
				proxy = testutil.NewProxy(t, testutil.MariaDBAddr)
				db = testutil.MariaDBVia(t, db, proxy.Addr())
			} else {
				proxy = testutil.NewProxy(t, testutil.PostgresAddr)
				db = testutil.PostgresVia(t, db, proxy.Addr())
			}
			s := boot(t, map[string]string{"APP_DATABASE_DRIVER": db.Driver, "APP_DATABASE_DSN": db.DSN,
				"APP_TOKEN_STRATEGY": "db", "APP_HTTP_REQUEST_TIMEOUT": "2s"})
			_, r := s.login("silent-db-user")
			access := r.Str("access_token")

			proxy.Freeze()
			var me reply
			testutil.Eventually(t, 30*time.Second, func() bool {
				me = s.call("GET", s.api+"/api/v1/me", access, nil)
				require.Contains(t, []int{200, 503}, me.Status, "%s", me.Raw)
				return me.Status == 503
			}, "a silent database is a 503")
			require.Equal(t, "service_unavailable", me.ErrorCode())
			require.NotEmpty(t, me.Header.Get("Retry-After"))
			l := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": s.wxLogin("silent-newcomer").Code})
			require.Equal(t, 503, l.Status, "%s", l.Raw)
			require.Equal(t, "service_unavailable", l.ErrorCode())

			proxy.Thaw()
			proxy.CloseAll() // what the frozen connections carried is stale
			testutil.Eventually(t, 30*time.Second, func() bool {
				return s.call("GET", s.api+"/api/v1/me", access, nil).Status == 200
			}, "the same token works once the database answers again")
		})
	}
}
