package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// from sends a JSON body as if from client address ip (the test's
// connection comes from 127.0.0.1, which the limits' tests trust as a
// proxy).
func (s *service) from(ip, method, url, bearer string, body any) reply {
	s.t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(s.t, err)
	req, err := http.NewRequest(method, url, bytes.NewReader(raw))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return s.do(req)
}

// limitBackends are where the limits are kept: this process's memory, a
// Redis, a Redis Cluster.
var limitBackends = []struct {
	name string
	vars func(t *testing.T) map[string]string
}{
	{"memory", func(t *testing.T) map[string]string { return map[string]string{} }},
	{"redis", func(t *testing.T) map[string]string {
		r := testutil.RedisConfig(t)
		return map[string]string{"APP_REDIS_ADDR": r.Addr, "APP_REDIS_PREFIX": r.Prefix}
	}},
	{"cluster", func(t *testing.T) map[string]string {
		r := testutil.RedisClusterConfig(t)
		return map[string]string{"APP_REDIS_ADDR": r.Addr, "APP_REDIS_PREFIX": r.Prefix}
	}},
}

// TestLoginFailuresPerAddress: junk codes from one address reach WeChat
// only until the address's failures use the limit up; then they are 429
// with Retry-After and cost WeChat nothing. Successes are not counted, and
// other addresses are not affected. Two instances sharing Redis share the
// count.
func TestLoginFailuresPerAddress(t *testing.T) {
	for _, b := range limitBackends {
		t.Run(b.name, func(t *testing.T) {
			vars := b.vars(t)
			vars["APP_RATELIMIT_LOGIN_FAILURES"] = "5/10m"
			vars["APP_HTTP_TRUSTED_PROXIES"] = "127.0.0.1"
			s := boot(t, vars)
			login := func(ip, code string) reply {
				return s.from(ip, "POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": code})
			}
			// A carrier address with many users: successes never count.
			for i := range 30 {
				d := s.wxLogin(fmt.Sprintf("carrier-user-%d", i))
				require.Equal(t, 200, login("203.0.113.7", d.Code).Status)
			}
			before := s.emulatorCalls("/sns/jscode2session")
			statuses := map[int]int{}
			var limited reply
			for i := range 300 {
				r := login("198.51.100.9", fmt.Sprintf("junk-code-%d", i))
				statuses[r.Status]++
				if r.Status == 429 {
					limited = r
				}
			}
			spent := s.emulatorCalls("/sns/jscode2session") - before
			t.Logf("300 junk codes from one address: answers %v, code2Session calls %d", statuses, spent)
			require.Equal(t, map[int]int{401: 5, 429: 295}, statuses)
			require.Equal(t, 5, spent, "WeChat saw only the failures the limit allows")
			require.Equal(t, "rate_limited", limited.ErrorCode())
			retry, err := strconv.Atoi(limited.Header.Get("Retry-After"))
			require.NoError(t, err)
			require.Positive(t, retry)
			require.LessOrEqual(t, retry, 120)

			d := s.wxLogin("honest-user")
			require.Equal(t, 429, login("198.51.100.9", d.Code).Status, "the exhausted address waits, even with a good code")
			require.Equal(t, 200, login("198.51.100.10", d.Code).Status, "another address logs in, with the code WeChat never saw")

			if b.name == "memory" {
				return
			}
			// A second instance on the same Redis knows the address.
			v := map[string]string{"APP_WECHAT_EMULATOR": "false", "APP_WECHAT_BASEURL": s.emu}
			for k, val := range vars {
				v[k] = val
			}
			other := boot(t, v)
			r := other.from("198.51.100.9", "POST", other.api+"/api/v1/auth/login", "", map[string]string{"code": "junk"})
			require.Equal(t, 429, r.Status, "%s", r.Raw)
		})
	}
}

// TestPlatformBudget: junk from many addresses (no per-address limit
// helps) still spends at most the app's budget of WeChat calls per minute;
// the rest is 429 without a call.
func TestPlatformBudget(t *testing.T) {
	for _, b := range limitBackends {
		t.Run(b.name, func(t *testing.T) {
			vars := b.vars(t)
			vars["APP_RATELIMIT_PLATFORM_CALLS"] = "20/1m"
			vars["APP_HTTP_TRUSTED_PROXIES"] = "127.0.0.1"
			s := boot(t, vars)
			before := s.emulatorCalls("/sns/jscode2session")
			statuses := map[int]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for w := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 10 {
						raw, _ := json.Marshal(map[string]string{"code": fmt.Sprintf("junk-%d-%d", w, i)})
						req, _ := http.NewRequest("POST", s.api+"/api/v1/auth/login", bytes.NewReader(raw))
						req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", w*10+i))
						resp, err := s.http.Do(req)
						if err != nil {
							continue
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						mu.Lock()
						statuses[resp.StatusCode]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			spent := s.emulatorCalls("/sns/jscode2session") - before
			t.Logf("100 junk codes from 100 addresses against a budget of 20/min: answers %v, code2Session calls %d", statuses, spent)
			require.Equal(t, map[int]int{401: 20, 429: 80}, statuses)
			require.Equal(t, 20, spent, "the app's quota is protected")

			r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": s.wxLogin("late").Code})
			require.Equal(t, 429, r.Status)
			require.Equal(t, "rate_limited", r.ErrorCode())
			require.NotEmpty(t, r.Header.Get("Retry-After"))
		})
	}
}

// TestRefreshLimitPerSession: a session refreshes a bounded number of times;
// forged refresh tokens naming the session do not use its allowance up.
func TestRefreshLimitPerSession(t *testing.T) {
	for _, b := range limitBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			vars := b.vars(t)
			vars["APP_RATELIMIT_REFRESH"] = "3/1h"
			s := boot(t, vars)
			_, r := s.login("refresher")
			rt := r.Str("refresh_token")
			sid, _, _ := strings.Cut(rt, ".")
			refresh := func(tok string) reply {
				return s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": tok})
			}
			for range 20 {
				f := refresh(sid + ".forged-secret-" + testutil.RandomName(""))
				require.Equal(t, 401, f.Status, "%s", f.Raw)
			}
			for i := range 3 {
				n := refresh(rt)
				require.Equal(t, 200, n.Status, "refresh %d: %s", i, n.Raw)
				rt = n.Str("refresh_token")
			}
			n := refresh(rt)
			require.Equal(t, 429, n.Status, "%s", n.Raw)
			require.Equal(t, "rate_limited", n.ErrorCode())
			require.NotEmpty(t, n.Header.Get("Retry-After"))
			_, other := s.login("refresher")
			require.Equal(t, 200, refresh(other.Str("refresh_token")).Status, "another session is not affected")
		})
	}
}

// TestOpenDataLimitPerUser: phone-number and user-info calls are limited
// per user.
func TestOpenDataLimitPerUser(t *testing.T) {
	s := boot(t, map[string]string{"APP_RATELIMIT_OPEN_DATA": "3/10m"})
	_, a := s.login("open-data-a")
	_, b := s.login("open-data-b")
	for range 3 {
		r := s.call("POST", s.api+"/api/v1/me/phone", a.Str("access_token"), map[string]string{"code": "not-a-phone-code"})
		require.NotEqual(t, 429, r.Status)
	}
	r := s.call("POST", s.api+"/api/v1/me/userinfo", a.Str("access_token"), map[string]string{})
	require.Equal(t, 429, r.Status, "%s", r.Raw)
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	r = s.call("POST", s.api+"/api/v1/me/phone", b.Str("access_token"), map[string]string{"code": "not-a-phone-code"})
	require.NotEqual(t, 429, r.Status, "another user is not affected")
}
