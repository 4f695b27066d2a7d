package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/token"
)

// sessionsOf lists the caller's sessions through the API.
func (s *service) sessionsOf(access string) []map[string]any {
	s.t.Helper()
	r := s.call("GET", s.api+"/api/v1/auth/sessions", access, nil)
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	raw, _ := r.Body["sessions"].([]any)
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i], _ = v.(map[string]any)
	}
	return out
}

// greet calls a business route behind the guard.
func (s *service) greet(access string) reply {
	s.t.Helper()
	return s.call("GET", s.api+"/api/v1/example/greeting", access, nil)
}

// refused checks a 401 unauthenticated with reason.
func refused(t *testing.T, r reply, reason, what string) {
	t.Helper()
	require.Equal(t, 401, r.Status, "%s: %s", what, r.Raw)
	require.Equal(t, "unauthenticated", r.ErrorCode(), what)
	require.Equal(t, reason, r.ErrorReason(), "%s: %s", what, r.Raw)
}

// TestSessionsAPI: a user sees their sessions (one per login, the calling
// one marked current) and ends one from another device; someone else's
// session, or an unknown one, is a 404 that tells nothing.
func TestSessionsAPI(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			s := boot(t, strategyVars(t, strategy))
			_, phone := s.login("sessions-user")
			_, tablet := s.login("sessions-user")
			_, other := s.login("someone-else")
			a, b := phone.Str("access_token"), tablet.Str("access_token")

			list := s.sessionsOf(a)
			require.Len(t, list, 2)
			current := 0
			var tabletID string
			for _, sess := range list {
				for _, f := range []string{"id", "client", "device", "appid", "created_at", "last_seen_at"} {
					require.Contains(t, sess, f)
				}
				require.Equal(t, s.cfg.WeChat.AppID, sess["appid"])
				_, err := time.Parse(time.RFC3339, sess["created_at"].(string))
				require.NoError(t, err, "created_at is RFC 3339")
				if sess["current"] == true {
					current++
				} else {
					tabletID = sess["id"].(string)
				}
			}
			require.Equal(t, 1, current, "exactly the calling session is current")
			require.Equal(t, tabletID, s.sessionsOf(b)[0]["id"], "most recently seen first")

			// Another user's session and unknown ids: 404 not_found, nothing ended.
			otherID := s.sessionsOf(other.Str("access_token"))[0]["id"].(string)
			for _, id := range []string{otherID, "no-such-session", tabletID + "x"} {
				r := s.call("DELETE", s.api+"/api/v1/auth/sessions/"+id, a, nil)
				require.Equal(t, 404, r.Status, "%s", r.Raw)
				require.Equal(t, "not_found", r.ErrorCode())
			}
			require.Equal(t, 200, s.greet(other.Str("access_token")).Status)

			// End the tablet's session from the phone.
			require.Equal(t, 204, s.call("DELETE", s.api+"/api/v1/auth/sessions/"+tabletID, a, nil).Status)
			refused(t, s.greet(b), "revoked", "the ended session's access token")
			rr := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": tablet.Str("refresh_token")})
			require.Equal(t, "invalid_refresh_token", rr.ErrorCode())
			require.Equal(t, "revoked", rr.ErrorReason())
			require.Len(t, s.sessionsOf(a), 1)
			require.Equal(t, 404, s.call("DELETE", s.api+"/api/v1/auth/sessions/"+tabletID, a, nil).Status, "already ended")
			require.Equal(t, 200, s.greet(a).Status)

			// No token, no list.
			refused(t, s.call("GET", s.api+"/api/v1/auth/sessions", "", nil), "invalid", "no token")
		})
	}
}

// TestSessionPolicies: APP_SESSION_MAX ends the oldest session at a login
// beyond it; APP_SESSION_SINGLE_PER_CLIENT ends the other sessions of the
// same client. The clients are told why.
func TestSessionPolicies(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy+"/max", func(t *testing.T) {
			vars := strategyVars(t, strategy)
			vars["APP_SESSION_MAX"] = "2"
			s := boot(t, vars)
			_, first := s.login("busy-user")
			_, second := s.login("busy-user")
			_, third := s.login("busy-user")
			refused(t, s.greet(first.Str("access_token")), "session_limit", "the oldest session beyond the limit")
			require.Equal(t, 200, s.greet(second.Str("access_token")).Status)
			require.Len(t, s.sessionsOf(third.Str("access_token")), 2)
		})
		t.Run(strategy+"/single-per-client", func(t *testing.T) {
			vars := strategyVars(t, strategy)
			vars["APP_SESSION_SINGLE_PER_CLIENT"] = "true"
			s := boot(t, vars)
			_, first := s.login("one-device-user")
			_, other := s.login("another-user")
			_, second := s.login("one-device-user")
			refused(t, s.greet(first.Str("access_token")), "replaced", "a session replaced by a login on the same client")
			rr := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": first.Str("refresh_token")})
			require.Equal(t, "replaced", rr.ErrorReason())
			require.Equal(t, 200, s.greet(second.Str("access_token")).Status)
			require.Equal(t, 200, s.greet(other.Str("access_token")).Status)
		})
	}
}

// TestReasons: every reason the token layer gives reaches the client in
// the 401's "reason": expired, logged_out, revoked (by the user elsewhere,
// or by a reuse), user_banned and user_deleted (lifecycle code ending every
// session), invalid. (replaced and session_limit: TestSessionPolicies.)
func TestReasons(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			vars := strategyVars(t, strategy)
			vars["APP_TOKEN_TTL"] = "2s"
			vars["APP_TOKEN_REFRESH_GRACE"] = "0"
			var st token.Strategy
			s := bootConfig(t, testConfigFor(t, vars), fx.Populate(&st))
			ctx := context.Background()

			refused(t, s.greet("not-a-token"), "invalid", "garbage")
			refused(t, s.greet(""), "invalid", "no token")

			_, r := s.login("reasons-user")
			access := r.Str("access_token")
			require.Equal(t, 200, s.greet(access).Status)
			testutil.Eventually(t, 10*time.Second, func() bool {
				return s.greet(access).ErrorReason() == "expired"
			}, "an access token past its TTL is refused as expired")
			refused(t, s.greet(access), "expired", "an expired token")
			n := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": r.Str("refresh_token")})
			require.Equal(t, 200, n.Status, "an expired access token is refreshed: %s", n.Raw)

			// The refresh just replaced this one: presenting it again is a reuse.
			_, r2 := s.login("reasons-user")
			n2 := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": r2.Str("refresh_token")})
			require.Equal(t, 200, n2.Status)
			require.Equal(t, "refresh_token_reused",
				s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": r2.Str("refresh_token")}).ErrorCode())
			refused(t, s.greet(n2.Str("access_token")), "revoked", "a token of a session revoked for reuse")

			for _, reason := range []token.Reason{token.ReasonUserBanned, token.ReasonUserDeleted} {
				_, lr := s.login("lifecycle-" + string(reason))
				a := lr.Str("access_token")
				p, err := st.Verify(ctx, a)
				require.NoError(t, err)
				require.NoError(t, st.RevokeAll(ctx, p.UserID, reason))
				refused(t, s.greet(a), string(reason), "after RevokeAll("+string(reason)+")")
				rr := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": lr.Str("refresh_token")})
				require.Equal(t, string(reason), rr.ErrorReason())
			}
		})
	}
}

// TestConcurrentRefreshAllSucceed: a mini program whose two requests see a
// 401 at once refreshes twice with one refresh token. Every refresh answers
// 200 with a working pair, and the session lives on.
func TestConcurrentRefreshAllSucceed(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			s := boot(t, strategyVars(t, strategy))
			_, r := s.login("racer")
			rt := r.Str("refresh_token")
			const n = 8
			replies := make([]reply, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					replies[i] = s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt})
				})
			}
			wg.Wait()
			for _, rep := range replies {
				require.Equal(t, 200, rep.Status, "%s", rep.Raw)
				require.Equal(t, replies[0].Str("refresh_token"), rep.Str("refresh_token"), "every caller gets the current refresh token")
				require.Equal(t, 200, s.greet(rep.Str("access_token")).Status)
			}
			next := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": replies[n-1].Str("refresh_token")})
			require.Equal(t, 200, next.Status, "%s", next.Raw)
			require.Equal(t, 200, s.greet(next.Str("access_token")).Status)
			require.Len(t, s.sessionsOf(next.Str("access_token")), 1)
		})
	}
}

// TestRefreshGrace: within APP_TOKEN_REFRESH_GRACE (30 s by default) the
// refresh token just replaced answers the current one and revokes nothing.
func TestRefreshGrace(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			s := boot(t, strategyVars(t, strategy))
			_, r := s.login("grace-user")
			refresh := func(rt string) reply {
				return s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt})
			}
			first := refresh(r.Str("refresh_token"))
			require.Equal(t, 200, first.Status)
			late := refresh(r.Str("refresh_token"))
			require.Equal(t, 200, late.Status, "%s", late.Raw)
			require.Equal(t, first.Str("refresh_token"), late.Str("refresh_token"))
			require.NotEqual(t, first.Str("access_token"), late.Str("access_token"))
			for _, a := range []string{first.Str("access_token"), late.Str("access_token")} {
				require.Equal(t, 200, s.greet(a).Status)
			}
		})
	}
}

// TestTokenStoreDown: a token store that stops answering is a 503 with
// Retry-After on guarded routes, never a 401, and the service recovers
// when it is back.
func TestTokenStoreDown(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) (map[string]string, *testutil.Proxy)
	}{
		{"redis", func(t *testing.T) (map[string]string, *testutil.Proxy) {
			r := testutil.RedisConfig(t)
			p := testutil.NewProxy(t, r.Addr)
			return map[string]string{"APP_TOKEN_STRATEGY": "redis", "APP_REDIS_ADDR": p.Addr(), "APP_REDIS_PREFIX": r.Prefix}, p
		}},
		{"db", func(t *testing.T) (map[string]string, *testutil.Proxy) {
			db := testutil.MariaDBConfig(t)
			p := testutil.NewProxy(t, testutil.MariaDBAddr)
			return map[string]string{"APP_TOKEN_STRATEGY": "db", "APP_DATABASE_DRIVER": "mysql",
				"APP_DATABASE_DSN": testutil.MariaDBVia(t, db, p.Addr()).DSN}, p
		}},
		{"jwt", func(t *testing.T) (map[string]string, *testutil.Proxy) {
			db := testutil.MariaDBConfig(t)
			p := testutil.NewProxy(t, testutil.MariaDBAddr)
			return map[string]string{"APP_TOKEN_STRATEGY": "jwt", "APP_DATABASE_DRIVER": "mysql",
				"APP_DATABASE_DSN": testutil.MariaDBVia(t, db, p.Addr()).DSN}, p
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vars, proxy := c.setup(t)
			s := boot(t, vars)
			_, r := s.login("outage-user")
			access := r.Str("access_token")

			proxy.Stop()
			// The first requests may still be answered from memory (the cache,
			// or the jwt deny list until the feed notices); none is a 401.
			var down reply
			testutil.Eventually(t, 10*time.Second, func() bool {
				down = s.greet(access)
				require.NotEqual(t, 401, down.Status, "a store outage must not log anyone out: %s", down.Raw)
				return down.Status == 503
			}, "a guarded route answers 503 while the token store is down")
			require.Equal(t, "service_unavailable", down.ErrorCode())
			require.NotEmpty(t, down.Header.Get("Retry-After"))
			rr := s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": r.Str("refresh_token")})
			require.Equal(t, 503, rr.Status, "%s", rr.Raw)

			proxy.Start(t)
			testutil.Eventually(t, 15*time.Second, func() bool { return s.greet(access).Status == 200 },
				"the service recovers when the store is back")
		})
	}
}
