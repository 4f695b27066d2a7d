package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// TestRefreshAndRevocation walks the refresh contract for every strategy:
// rotation, reuse detection revoking the family, logout and logout/all.
// The grace window is off, so that a replayed token is a reuse at once
// (TestRefreshGrace covers the window).
func TestRefreshAndRevocation(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			vars := strategyVars(t, strategy)
			vars["APP_TOKEN_REFRESH_GRACE"] = "0"
			s := boot(t, vars)
			me := func(access string) int { return s.call("GET", s.api+"/api/v1/me", access, nil).Status }
			refresh := func(rt string) reply {
				return s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt})
			}

			_, r := s.login("refresh-user")
			a1, r1 := r.Str("access_token"), r.Str("refresh_token")
			s.remember(a1, r1)

			// Rotation: a new pair, the old refresh token is spent.
			n := refresh(r1)
			require.Equal(t, 200, n.Status, "%s", n.Raw)
			a2, r2 := n.Str("access_token"), n.Str("refresh_token")
			s.remember(a2, r2)
			require.NotEqual(t, r1, r2)
			require.Equal(t, "Bearer", n.Str("token_type"))
			require.Positive(t, n.Body["expires_in"])
			require.Positive(t, n.Body["refresh_expires_in"])
			require.Equal(t, 200, me(a2))

			// Reuse of the spent token is theft: the family is revoked.
			reused := refresh(r1)
			require.Equal(t, 401, reused.Status)
			require.Equal(t, "refresh_token_reused", reused.ErrorCode())
			require.Equal(t, 401, me(a2), "the family's access tokens stop working")
			require.Equal(t, "revoked", s.call("GET", s.api+"/api/v1/me", a2, nil).ErrorReason())
			require.Equal(t, 401, refresh(r2).Status, "and its newest refresh token")
			require.Equal(t, 401, me(a1))

			// Logout revokes the access token and its refresh token only.
			_, ra := s.login("refresh-user")
			_, rb := s.login("refresh-user")
			require.Equal(t, 204, s.call("POST", s.api+"/api/v1/auth/logout", ra.Str("access_token"), nil).Status)
			require.Equal(t, 401, me(ra.Str("access_token")))
			require.Equal(t, "logged_out", s.call("GET", s.api+"/api/v1/me", ra.Str("access_token"), nil).ErrorReason())
			require.Equal(t, "invalid_refresh_token", refresh(ra.Str("refresh_token")).ErrorCode())
			require.Equal(t, "logged_out", refresh(ra.Str("refresh_token")).ErrorReason())
			require.Equal(t, 200, me(rb.Str("access_token")))

			// Logout everywhere.
			_, rc := s.login("refresh-user")
			require.Equal(t, 204, s.call("POST", s.api+"/api/v1/auth/logout/all", rb.Str("access_token"), nil).Status)
			require.Equal(t, 401, me(rb.Str("access_token")))
			require.Equal(t, 401, me(rc.Str("access_token")))
			require.Equal(t, "logged_out", s.call("GET", s.api+"/api/v1/me", rc.Str("access_token"), nil).ErrorReason())
			require.Equal(t, 401, refresh(rc.Str("refresh_token")).Status)

			// Another user is untouched.
			_, other := s.login("someone-else")
			require.Equal(t, 200, me(other.Str("access_token")))
		})
	}
}

// TestEdDSAAndJWKS: tokens verify elsewhere with only the published keys.
func TestEdDSAAndJWKS(t *testing.T) {
	s := boot(t, map[string]string{"APP_TOKEN_JWT_ALG": "EdDSA"})
	_, r := s.login("eddsa-user")
	access := r.Str("access_token")

	jwks := s.call("GET", s.api+"/.well-known/jwks.json", "", nil)
	require.Equal(t, 200, jwks.Status)
	require.NotContains(t, string(jwks.Raw), `"d"`, "no private material")
	var doc struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg string }
	}
	require.NoError(t, json.Unmarshal(jwks.Raw, &doc))
	require.NotEmpty(t, doc.Keys)
	keys := map[string]ed25519.PublicKey{}
	for _, k := range doc.Keys {
		require.Equal(t, "OKP", k.Kty)
		require.Equal(t, "Ed25519", k.Crv)
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		require.NoError(t, err)
		keys[k.Kid] = ed25519.PublicKey(x)
	}

	// A third party verifies with the JWKS alone.
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(access, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return keys[kid], nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(s.cfg.Token.Issuer), jwt.WithAudience(s.cfg.Token.Audience), jwt.WithExpirationRequired())
	require.NoError(t, err)
	require.True(t, tok.Valid)
	for _, c := range []string{"sub", "iat", "exp", "jti", "iss", "aud"} {
		require.Contains(t, claims, c)
	}

	// HS256 services publish nothing.
	hs := boot(t, nil)
	require.Equal(t, 404, hs.call("GET", hs.api+"/.well-known/jwks.json", "", nil).Status)
}

// fleet boots n instances of the service on one server database of
// backend (and Redis when withRedis), all speaking to one emulator run by
// the first.
func fleet(t *testing.T, n int, backend, strategy string, withRedis bool) []*service {
	t.Helper()
	db := testutil.DatabaseConfig(t, backend)
	vars := map[string]string{
		"APP_TOKEN_STRATEGY":  strategy,
		"APP_DATABASE_DRIVER": db.Driver,
		"APP_DATABASE_DSN":    db.DSN,
		"APP_TOKEN_SECRET":    strings.Repeat("fleet-shared-secret-", 3),
		// A replay is a reuse at once (no grace window), to see it travel.
		"APP_TOKEN_REFRESH_GRACE": "0",
	}
	if withRedis {
		r := testutil.RedisConfig(t)
		vars["APP_REDIS_ADDR"] = r.Addr
		vars["APP_REDIS_PREFIX"] = r.Prefix
	}
	first := boot(t, vars)
	out := []*service{first}
	for range n - 1 {
		v := map[string]string{"APP_WECHAT_EMULATOR": "false", "APP_WECHAT_BASEURL": first.emu}
		for k, val := range vars {
			v[k] = val
		}
		s := boot(t, v)
		s.emu = first.emu
		out = append(out, s)
	}
	return out
}

// TestFleet: instances sharing a database (and Redis) honour each other's
// tokens and revocations within a second, for every strategy (and on
// PostgreSQL too where the database carries the revocations).
func TestFleet(t *testing.T) {
	cases := []struct {
		strategy  string
		withRedis bool
		backend   string
	}{
		{"jwt", true, "mariadb"}, {"db", true, "mariadb"}, {"redis", true, "mariadb"},
		{"jwt", false, "mariadb"}, {"db", false, "mariadb"},
		{"jwt", false, "postgres"}, {"db", false, "postgres"},
	}
	for _, c := range cases {
		name := c.strategy
		if !c.withRedis {
			name += "-without-redis"
		}
		if c.backend != "mariadb" {
			name += "-" + c.backend
		}
		t.Run(name, func(t *testing.T) {
			f := fleet(t, 3, c.backend, c.strategy, c.withRedis)
			a, b, cc := f[0], f[1], f[2]
			_, r := a.login("fleet-user")
			access := r.Str("access_token")
			for _, s := range f {
				require.Equal(t, 200, s.call("GET", s.api+"/api/v1/me", access, nil).Status, "a token from A works everywhere (and is now cached)")
			}
			require.Equal(t, 204, b.call("POST", b.api+"/api/v1/auth/logout", access, nil).Status)
			start := time.Now()
			for _, s := range []*service{a, cc} {
				testutil.Eventually(t, time.Second, func() bool {
					return s.call("GET", s.api+"/api/v1/me", access, nil).Status == 401
				}, "logout on B is honoured by the others within 1 s")
			}
			t.Logf("revocation seen everywhere after %s", time.Since(start).Round(time.Millisecond))

			// A session ended from another device (on B) is refused everywhere,
			// with its reason, within a second.
			_, phone := a.login("fleet-user")
			_, tablet := cc.login("fleet-user")
			tabletAccess := tablet.Str("access_token")
			for _, s := range f {
				require.Equal(t, 200, s.call("GET", s.api+"/api/v1/me", tabletAccess, nil).Status)
			}
			var tabletID string
			for _, sess := range b.sessionsOf(phone.Str("access_token")) {
				if sess["current"] != true {
					tabletID = sess["id"].(string)
				}
			}
			require.Equal(t, 204, b.call("DELETE", b.api+"/api/v1/auth/sessions/"+tabletID, phone.Str("access_token"), nil).Status)
			for _, s := range f {
				testutil.Eventually(t, time.Second, func() bool {
					return s.call("GET", s.api+"/api/v1/me", tabletAccess, nil).ErrorReason() == "revoked"
				}, "a session ended on B is refused as revoked everywhere within 1 s")
			}

			// Refresh tokens rotate across instances too.
			_, r2 := a.login("fleet-user")
			n := b.call("POST", b.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": r2.Str("refresh_token")})
			require.Equal(t, 200, n.Status)
			reused := cc.call("POST", cc.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": r2.Str("refresh_token")})
			require.Equal(t, "refresh_token_reused", reused.ErrorCode())
			testutil.Eventually(t, time.Second, func() bool {
				return a.call("GET", a.api+"/api/v1/me", n.Str("access_token"), nil).Status == 401
			}, "reuse detected on C revokes the family on A")
		})
	}
}

// TestFleetFetchesOneAccessToken: three instances on one Redis under
// concurrent phone-number calls fetch one WeChat access token, with the
// classic /cgi-bin/token (whose every fetch invalidates the previous one).
func TestFleetFetchesOneAccessToken(t *testing.T) {
	db := testutil.MariaDBConfig(t)
	r := testutil.RedisConfig(t)
	vars := map[string]string{
		"APP_DATABASE_DRIVER": "mysql", "APP_DATABASE_DSN": db.DSN,
		"APP_REDIS_ADDR": r.Addr, "APP_REDIS_PREFIX": r.Prefix,
		"APP_WECHAT_STABLETOKEN": "false",
	}
	first := boot(t, vars)
	f := []*service{first}
	for range 2 {
		v := map[string]string{"APP_WECHAT_EMULATOR": "false", "APP_WECHAT_BASEURL": first.emu}
		for k, val := range vars {
			v[k] = val
		}
		s := boot(t, v)
		s.emu = first.emu
		f = append(f, s)
	}
	const perInstance = 40
	type job struct {
		s            *service
		access, code string
	}
	var jobs []job
	for _, s := range f {
		for range perInstance {
			d, lr := s.login("")
			ph := s.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13700000000"})
			jobs = append(jobs, job{s, lr.Str("access_token"), ph["code"]})
		}
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = j.s.call("POST", j.s.api+"/api/v1/me/phone", j.access, map[string]string{"code": j.code}).Status
		}()
	}
	wg.Wait()
	for _, st := range statuses {
		require.Equal(t, 200, st)
	}
	require.Equal(t, 1, first.emulatorCalls("/cgi-bin/token"), "one fetch for the whole fleet")
}
