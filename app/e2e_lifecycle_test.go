package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// adminToken is the APP_ADMIN_TOKEN of these tests.
var adminToken = strings.Repeat("admin-token-for-tests-", 2)

// admin calls the admin API.
func (s *service) admin(method, path string, body any) reply {
	s.t.Helper()
	s.remember(adminToken)
	return s.call(method, s.api+"/admin/v1"+path, adminToken, body)
}

// loginDevice logs a person in through an app with a device name.
func (s *service) loginDevice(appid, openid, unionid, deviceName string) (device, reply) {
	s.t.Helper()
	fields := map[string]any{"appid": appid, "openid": openid}
	if unionid != "" {
		fields["unionid"] = unionid
	}
	d := s.device(fields)
	r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": appid, "device": deviceName})
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	s.remember(d.SessionKey, r.Str("access_token"), r.Str("refresh_token"))
	return d, r
}

// refresh spends a refresh token.
func (s *service) refresh(rt string) reply {
	s.t.Helper()
	return s.call("POST", s.api+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt})
}

// loginCode tries a login with a fresh code and returns the answer, whatever it is.
func (s *service) tryLogin(appid, openid string) reply {
	s.t.Helper()
	d := s.device(map[string]any{"appid": appid, "openid": openid})
	return s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": appid})
}

// TestBan: a banned user's tokens stop at once with the reason, refresh
// refuses, a new login is a 403 with the ban's end, and at that end the ban
// lapses by itself. Every strategy.
func TestBan(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(strategy, func(t *testing.T) {
			vars := brandVars(t, strategy)
			vars["APP_ADMIN_TOKEN"] = adminToken
			s := boot(t, vars)
			_, a := s.loginVia(miniA, "o-ban", "u-ban")
			_, b := s.loginVia(miniB, "o-ban-b", "u-ban")
			id := userID(a)
			require.Equal(t, id, userID(b))
			require.Equal(t, 200, s.greet(a.Str("access_token")).Status)

			until := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
			r := s.admin("POST", fmt.Sprintf("/users/%d/ban", id), map[string]string{"reason": "spam, reported twice", "until": until.Format(time.RFC3339)})
			require.Equal(t, 200, r.Status, "%s", r.Raw)
			require.Equal(t, "banned", r.Body["status"])
			require.Equal(t, "spam, reported twice", r.Body["ban_reason"])
			require.Empty(t, r.Body["sessions"], "every session ended")

			for _, tok := range []string{a.Str("access_token"), b.Str("access_token")} {
				refused(t, s.greet(tok), "user_banned", "a banned user's token, at once on this instance")
			}
			rr := s.refresh(a.Str("refresh_token"))
			require.Equal(t, 401, rr.Status)
			require.Equal(t, "invalid_refresh_token", rr.ErrorCode())
			require.Equal(t, "user_banned", rr.ErrorReason())

			l := s.tryLogin(miniA, "o-ban")
			require.Equal(t, 403, l.Status, "%s", l.Raw)
			require.Equal(t, "user_banned", l.ErrorCode())
			e := l.Body["error"].(map[string]any)
			got, err := time.Parse(time.RFC3339, e["until"].(string))
			require.NoError(t, err)
			require.True(t, until.Equal(got), "the answer says when the ban ends")
			require.NotContains(t, string(l.Raw), "spam", "the reason is for operators only")
			// Another app's first login with the person's unionid is refused too.
			d := s.device(map[string]any{"appid": pageH, "openid": "o-ban-h2", "unionid": "u-ban"})
			l = s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code, "appid": pageH})
			require.Equal(t, "user_banned", l.ErrorCode())

			// Watched through the admin API, which costs no WeChat call (the
			// emulator's per-user quota would refuse a login loop).
			testutil.Eventually(t, 15*time.Second, func() bool {
				return s.admin("GET", fmt.Sprintf("/users/%d", id), nil).Body["status"] == "active"
			}, "the ban lapses by itself at its end")
			require.False(t, time.Now().Before(until), "not before its end")
			l = s.tryLogin(miniA, "o-ban")
			require.Equal(t, 200, l.Status, "%s", l.Raw)
			after := s.admin("GET", fmt.Sprintf("/users/%d", id), nil)
			require.Nil(t, after.Body["ban_reason"])
			require.Nil(t, after.Body["banned_until"])

			// A ban without end, lifted by an operator.
			r = s.admin("POST", fmt.Sprintf("/users/%d/ban", id), map[string]string{"reason": "again"})
			require.Equal(t, 200, r.Status, "%s", r.Raw)
			l = s.tryLogin(miniA, "o-ban")
			require.Equal(t, "user_banned", l.ErrorCode())
			require.NotContains(t, l.Body["error"], "until", "no end, no until")
			require.Equal(t, 200, s.admin("POST", fmt.Sprintf("/users/%d/unban", id), nil).Status)
			require.Equal(t, 200, s.tryLogin(miniA, "o-ban").Status)
		})
	}
}

// TestBanBitesOnEveryInstance: a ban made on one instance ends the user's
// tokens on another sharing the database within a second, with Redis and
// without.
func TestBanBitesOnEveryInstance(t *testing.T) {
	for _, withRedis := range []bool{true, false} {
		name := "without-redis"
		if withRedis {
			name = "with-redis"
		}
		t.Run(name, func(t *testing.T) {
			db := testutil.MariaDBConfig(t)
			vars := map[string]string{
				"APP_APPS": brandApps, "APP_DATABASE_DRIVER": db.Driver, "APP_DATABASE_DSN": db.DSN,
				"APP_TOKEN_SECRET": strings.Repeat("fleet-shared-secret-", 3), "APP_ADMIN_TOKEN": adminToken,
			}
			if withRedis {
				r := testutil.RedisConfig(t)
				vars["APP_REDIS_ADDR"], vars["APP_REDIS_PREFIX"] = r.Addr, r.Prefix
			}
			a := boot(t, vars)
			b := boot(t, merged(vars, map[string]string{"APP_WECHAT_EMULATOR": "false", "APP_WECHAT_BASEURL": a.emu}))
			b.emu = a.emu
			_, r := b.loginVia(miniA, "o-fleet-ban", "")
			tok := r.Str("access_token")
			require.Equal(t, 200, b.greet(tok).Status, "cached on B")

			start := time.Now()
			ban := a.admin("POST", fmt.Sprintf("/users/%d/ban", userID(r)), map[string]string{"reason": "fraud"})
			require.Equal(t, 200, ban.Status, "%s", ban.Raw)
			answered := time.Since(start)
			testutil.Eventually(t, time.Second, func() bool {
				return b.greet(tok).Status == 401
			}, "B refuses the banned user's token within a second")
			t.Logf("the ban was answered after %s and bit on B after %s", answered, time.Since(start))
			refused(t, b.greet(tok), "user_banned", "on B")
			require.Equal(t, "user_banned", b.refresh(r.Str("refresh_token")).ErrorReason())
			require.Equal(t, 403, b.tryLogin(miniA, "o-fleet-ban").Status)
		})
	}
}

// TestBanRacingLogins: logins of one person on one instance while an
// operator bans them on another leave no working session behind, whichever
// login read the user before the ban committed and stored its session
// after the ban ended the others. Without Redis (the slower feed), and the
// logins' instance behind a slow network to its database (20 ms each way),
// so that many logins straddle the ban.
func TestBanRacingLogins(t *testing.T) {
	db := testutil.MariaDBConfig(t)
	vars := map[string]string{
		"APP_APPS": brandApps, "APP_DATABASE_DRIVER": db.Driver, "APP_DATABASE_DSN": db.DSN,
		"APP_TOKEN_SECRET": strings.Repeat("fleet-shared-secret-", 3), "APP_ADMIN_TOKEN": adminToken,
		"APP_SESSION_MAX": "0",
	}
	a := boot(t, vars)
	slow := testutil.NewProxy(t, testutil.MariaDBAddr)
	slow.Delay(20 * time.Millisecond)
	b := boot(t, merged(vars, map[string]string{"APP_WECHAT_EMULATOR": "false", "APP_WECHAT_BASEURL": a.emu,
		"APP_DATABASE_DSN": testutil.MariaDBVia(t, db, slow.Addr()).DSN}))
	b.emu = a.emu
	_, first := b.loginVia(miniA, "o-race-ban", "")
	id := userID(first)

	const n = 60 // within the emulator's quota of one user's logins per minute
	codes := make([]string, n)
	for i := range codes {
		codes[i] = b.device(map[string]any{"appid": miniA, "openid": "o-race-ban"}).Code
	}
	answers := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 5 * time.Millisecond) // spread over the ban
			answers[i] = b.call("POST", b.api+"/api/v1/auth/login", "", map[string]string{"code": codes[i], "appid": miniA})
		})
	}
	time.Sleep(time.Duration(n) * 5 * time.Millisecond / 2)
	require.Equal(t, 200, a.admin("POST", fmt.Sprintf("/users/%d/ban", id), map[string]string{"reason": "fraud"}).Status)
	wg.Wait()

	var before, after int
	for _, r := range answers {
		switch r.Status {
		case 200:
			before++
		case 403:
			require.Equal(t, "user_banned", r.ErrorCode())
			after++
		default:
			t.Fatalf("a login answered %d: %s", r.Status, r.Raw)
		}
	}
	t.Logf("%d logins got tokens before the ban, %d were refused", before, after)
	// Within a second of the ban every session, however late it was
	// stored, is refused everywhere.
	time.Sleep(1500 * time.Millisecond)
	for _, r := range answers {
		if r.Status != 200 {
			continue
		}
		for i, s := range []*service{a, b} {
			refused(t, s.greet(r.Str("access_token")), "user_banned", fmt.Sprintf("a token of a login racing the ban, on instance %d (%s)", i, r.Raw))
		}
		require.Equal(t, 401, b.refresh(r.Str("refresh_token")).Status)
	}
	require.Empty(t, a.admin("GET", fmt.Sprintf("/users/%d", id), nil).Body["sessions"], "no live session left")
}

// TestDeletionLeavesNoPersonalData: a user's own deletion and an
// operator's erase the nickname, the avatar file, the phone, every
// identity's openid, unionid and session key — nothing of it is left in
// any table (or Redis) or in the avatar directory — end every session, and
// a later login through the same WeChat account is a new, empty user.
func TestDeletionLeavesNoPersonalData(t *testing.T) {
	for _, strategy := range strategies {
		for _, by := range []string{"self", "admin"} {
			t.Run(strategy+"/"+by, func(t *testing.T) {
				db := testutil.MariaDBConfig(t)
				vars := merged(brandVars(t, strategy), map[string]string{
					"APP_DATABASE_DRIVER": db.Driver, "APP_DATABASE_DSN": db.DSN, "APP_ADMIN_TOKEN": adminToken,
				})
				s := boot(t, vars)
				tag := testutil.RandomName("")
				openA, openB, union := "oDelA"+tag, "oDelB"+tag, "uDel"+tag
				nickname, phone, deviceName := "删除我"+tag, fmt.Sprintf("139%08d", time.Now().UnixNano()%1e8), "小明的手机"+tag

				dA, a := s.loginDevice(miniA, openA, union, deviceName)
				dB, b := s.loginDevice(miniB, openB, union, deviceName)
				id := userID(a)
				require.Equal(t, id, userID(b))
				tok := a.Str("access_token")
				require.Equal(t, 200, s.call("PATCH", s.api+"/api/v1/me", tok, map[string]string{"nickname": nickname}).Status)
				code := s.deviceData("/emulator/phone", map[string]any{"appid": miniA, "openid": openA, "phone": phone})["code"]
				require.Equal(t, 200, s.call("POST", s.api+"/api/v1/me/phone", tok, map[string]string{"code": code}).Status)
				up := s.upload(s.api+"/api/v1/me/avatar", tok, "file", pngImage(t, 12))
				require.Equal(t, 200, up.Status, "%s", up.Raw)
				avatarURL := up.Body["avatar_url"].(string)
				avatarFile := avatarURL[strings.LastIndex(avatarURL, "/")+1:]
				require.FileExists(t, s.cfg.Avatar.Dir+"/"+avatarFile)
				// An ended session keeps its row too: it must be erased as well.
				_, old := s.loginDevice(miniB, openB, union, deviceName)
				require.Equal(t, 204, s.call("POST", s.api+"/api/v1/auth/logout", old.Str("access_token"), nil).Status)

				needles := []string{openA, openB, union, nickname, phone, deviceName, avatarFile, dA.SessionKey, dB.SessionKey}
				require.NotEmpty(t, scanMariaDB(t, db.DSN, needles), "the scan finds the data while the user lives")

				if by == "self" {
					r := s.call("DELETE", s.api+"/api/v1/me", tok, nil)
					require.Equal(t, 204, r.Status, "%s", r.Raw)
					// Answered only once this instance's sessions ended.
					refused(t, s.greet(tok), "user_deleted", "at once")
				} else {
					r := s.admin("DELETE", fmt.Sprintf("/users/%d", id), nil)
					require.Equal(t, 204, r.Status, "%s", r.Raw)
					refused(t, s.greet(tok), "user_deleted", "at once")
					require.Equal(t, 404, s.admin("GET", fmt.Sprintf("/users/%d", id), nil).Status, "an operator finds no user")
					require.Empty(t, s.admin("GET", "/users?openid="+openA, nil).Body["users"])
				}
				refused(t, s.greet(b.Str("access_token")), "user_deleted", "every session")
				rr := s.refresh(b.Str("refresh_token"))
				require.Equal(t, "invalid_refresh_token", rr.ErrorCode())
				require.Equal(t, "user_deleted", rr.ErrorReason())

				require.Empty(t, scanMariaDB(t, db.DSN, needles), "no table keeps anything of the user")
				if strategy == "redis" {
					require.Empty(t, scanRedis(t, vars["APP_REDIS_ADDR"], vars["APP_REDIS_PREFIX"], needles), "nor Redis")
				}
				entries, err := os.ReadDir(s.cfg.Avatar.Dir)
				require.NoError(t, err)
				require.Empty(t, entries, "the avatar file is gone")

				// The same WeChat account later: a new, empty user.
				_, again := s.loginVia(miniA, openA, union)
				require.NotEqual(t, id, userID(again))
				require.Empty(t, again.User()["nickname"])
				require.Nil(t, again.User()["phone"])
				require.Equal(t, []string{miniA + "/" + openA}, identities(again.User()))
			})
		}
	}
}

// scanMariaDB returns "table: needle" for every needle found in any column
// of any row of any table of the database.
func scanMariaDB(t *testing.T, dsn string, needles []string) []string {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Close())
	require.Contains(t, tables, "users")
	var found []string
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, "SELECT * FROM `"+table+"`")
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for i, v := range vals {
				for _, n := range needles {
					if n != "" && bytes.Contains(v, []byte(n)) {
						found = append(found, table+"."+cols[i]+": "+n)
					}
				}
			}
		}
		require.NoError(t, rows.Close())
	}
	return found
}

// scanRedis returns the keys under prefix whose name or value holds a needle.
func scanRedis(t *testing.T, addr, prefix string, needles []string) []string {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	var found []string
	for _, k := range keys {
		var text string
		switch rdb.Type(ctx, k).Val() {
		case "string":
			text = rdb.Get(ctx, k).Val()
		case "hash":
			text = fmt.Sprint(rdb.HGetAll(ctx, k).Val())
		case "set":
			text = fmt.Sprint(rdb.SMembers(ctx, k).Val())
		case "zset":
			text = fmt.Sprint(rdb.ZRange(ctx, k, 0, -1).Val())
		case "list":
			text = fmt.Sprint(rdb.LRange(ctx, k, 0, -1).Val())
		}
		for _, n := range needles {
			if n != "" && (strings.Contains(k, n) || strings.Contains(text, n)) {
				found = append(found, k+": "+n)
			}
		}
	}
	return found
}

// TestAdminAPI: the routes exist only with APP_ADMIN_TOKEN, need it, and
// leave an audit line per call that never holds the token.
func TestAdminAPI(t *testing.T) {
	off := boot(t, brandVars(t, "jwt"))
	r := off.call("GET", off.api+"/admin/v1/users/1", adminToken, nil)
	require.Equal(t, 404, r.Status, "no APP_ADMIN_TOKEN, no admin API")
	require.Equal(t, "not_found", r.ErrorCode())

	vars := brandVars(t, "db")
	vars["APP_ADMIN_TOKEN"] = adminToken
	s := boot(t, vars)
	_, a := s.loginDevice(miniA, "o-adm", "u-adm", "phone")
	_, b := s.loginDevice(miniB, "o-adm-b", "u-adm", "tablet")
	_, other := s.loginVia(miniA, "o-other", "")
	id := userID(a)
	code := s.deviceData("/emulator/phone", map[string]any{"appid": miniA, "openid": "o-adm", "phone": "13700001111"})["code"]
	require.Equal(t, 200, s.call("POST", s.api+"/api/v1/me/phone", a.Str("access_token"), map[string]string{"code": code}).Status)

	for _, bearer := range []string{"", "wrong-token", adminToken + "x", a.Str("access_token")} {
		r := s.call("GET", fmt.Sprintf("%s/admin/v1/users/%d", s.api, id), bearer, nil)
		require.Equal(t, 401, r.Status, "%q", bearer)
		require.Equal(t, "unauthenticated", r.ErrorCode())
	}
	require.NotEmpty(t, s.logs.FilterMessage("admin call").FilterField(zap.String("who", "unauthenticated")).All(), "refused calls are audited")

	u := s.admin("GET", fmt.Sprintf("/users/%d", id), nil)
	require.Equal(t, 200, u.Status, "%s", u.Raw)
	require.Equal(t, "active", u.Body["status"])
	require.Equal(t, "13700001111", u.Body["phone"])
	require.Len(t, u.Body["identities"], 2)
	sessions := u.Body["sessions"].([]any)
	require.Len(t, sessions, 2)
	require.NotContains(t, string(u.Raw), "session_key")
	for _, k := range []string{"id", "client", "device", "provider", "appid", "created_at", "last_seen_at", "expires_at"} {
		require.Contains(t, sessions[0], k)
	}

	for q, want := range map[string]int{"openid=o-adm-b": 1, "unionid=u-adm": 1, "phone=13700001111": 1, "phone=%2B8613700001111": 1, "openid=o-nobody": 0} {
		r := s.admin("GET", "/users?"+q, nil)
		require.Equal(t, 200, r.Status, "%s: %s", q, r.Raw)
		require.Len(t, r.Body["users"], want, q)
	}
	for _, q := range []string{"", "openid=a&phone=1", "colour=red"} {
		r := s.admin("GET", "/users?"+q, nil)
		require.Equal(t, 400, r.Status, q)
		require.Equal(t, "invalid_query", r.ErrorCode())
	}

	for path, want := range map[string]int{"/users/999999": 404, "/users/abc": 404, "/users/0": 404, "/nothing-here": 404} {
		r := s.admin("GET", path, nil)
		require.Equal(t, want, r.Status, path)
		require.Equal(t, "not_found", r.ErrorCode())
	}
	for body, code := range map[string]string{`{}`: "invalid_reason", `{"reason":""}`: "invalid_reason",
		`{"reason":"x","until":"tomorrow"}`: "invalid_until", `{"reason":"x","until":"2001-01-01T00:00:00Z"}`: "invalid_until"} {
		r := s.admin("POST", fmt.Sprintf("/users/%d/ban", id), body)
		require.Equal(t, 400, r.Status, body)
		require.Equal(t, code, r.ErrorCode(), body)
	}
	require.Equal(t, 404, s.admin("POST", "/users/999999/ban", map[string]string{"reason": "x"}).Status)

	// End one session, then all of them.
	var tabletID string
	for _, x := range sessions {
		if m := x.(map[string]any); m["device"] == "tablet" {
			tabletID = m["id"].(string)
		}
	}
	require.Equal(t, 204, s.admin("DELETE", "/sessions/"+tabletID, nil).Status)
	refused(t, s.greet(b.Str("access_token")), "revoked", "the session an operator ended")
	require.Equal(t, 200, s.greet(a.Str("access_token")).Status)
	require.Equal(t, 404, s.admin("DELETE", "/sessions/"+tabletID, nil).Status, "already ended")
	require.Equal(t, 404, s.admin("DELETE", "/sessions/no-such-session", nil).Status)
	require.Equal(t, 204, s.admin("DELETE", fmt.Sprintf("/users/%d/sessions", id), nil).Status)
	refused(t, s.greet(a.Str("access_token")), "revoked", "kicked out everywhere")
	require.Equal(t, 200, s.greet(other.Str("access_token")).Status, "nobody else")
	require.Equal(t, 404, s.admin("DELETE", "/users/999999/sessions", nil).Status)
	require.Equal(t, 404, s.admin("DELETE", "/users/999999", nil).Status)

	// The audit trail: who, what, which user; never the token.
	lines := s.logs.FilterMessage("admin call").FilterField(zap.String("who", "admin")).All()
	var whats []string
	for _, l := range lines {
		whats = append(whats, l.ContextMap()["what"].(string))
		for _, v := range l.ContextMap() {
			require.NotContains(t, fmt.Sprint(v), adminToken)
		}
	}
	for _, w := range []string{"get_user", "search_users", "ban_user", "end_session", "end_user_sessions", "delete_user"} {
		require.Contains(t, whats, w)
	}
	got := s.logs.FilterMessage("admin call").FilterField(zap.String("what", "end_user_sessions")).All()
	require.EqualValues(t, id, got[0].ContextMap()["user_id"])
	for _, l := range s.logs.FilterMessage("admin call").FilterField(zap.String("what", "search_users")).All() {
		require.NotContains(t, fmt.Sprint(l.ContextMap()), "13700001111", "searched values stay out of the log")
	}
}

// pushApps are two mini programs that receive WeChat's pushes: A in plain
// mode, B in safe mode (EncodingAESKey set).
var pushApps = `[
 {"appid":"` + miniA + `","secret":"secret-of-mini-A-0123456789abcdef","push_token":"tokenA123","kind":"miniprogram"},
 {"appid":"` + miniB + `","secret":"secret-of-mini-B-0123456789abcdef","push_token":"tokenB456","push_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}]`

// push has the emulator push an event to the service; the answer is the
// emulator's {"status","body","request"}.
func (s *service) push(fields map[string]any) reply {
	s.t.Helper()
	r := s.call("POST", s.emu+"/emulator/push", "", fields)
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	return r
}

// pushed is the service's answer to a push.
func pushed(r reply) (int, string) {
	status, _ := r.Body["status"].(float64)
	body, _ := r.Body["body"].(string)
	return int(status), body
}

// replay sends a push request the emulator sent, once more, as it was.
func (s *service) replay(r reply) (int, string) {
	s.t.Helper()
	req := r.Body["request"].(map[string]any)
	hr, err := http.NewRequest("POST", req["url"].(string), strings.NewReader(req["body"].(string)))
	require.NoError(s.t, err)
	hr.Header.Set("Content-Type", req["content_type"].(string))
	resp, err := s.http.Do(hr)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthorizationEvents: WeChat's user-authorization events, pushed by the
// emulator in plain and safe mode, JSON and XML, erase what the user
// withdrew; a bad signature changes nothing; a replay acts no more.
func TestAuthorizationEvents(t *testing.T) {
	for _, c := range []struct{ app, other, format string }{
		{miniA, miniB, "json"}, {miniA, miniB, "xml"}, {miniB, miniA, "json"}, {miniB, miniA, "xml"},
	} {
		mode := map[string]string{miniA: "plain", miniB: "safe"}[c.app]
		t.Run(mode+"/"+c.format, func(t *testing.T) {
			vars := strategyVars(t, "jwt")
			vars["APP_APPS"] = pushApps
			s := boot(t, vars)
			openid, otherOpenID := "o-push-"+c.format, "o-other-"+c.format
			_, r := s.loginVia(c.app, openid, "u-push")
			_, o := s.loginVia(c.other, otherOpenID, "u-push")
			tok, otherTok := r.Str("access_token"), o.Str("access_token")
			require.Equal(t, userID(r), userID(o))
			require.Equal(t, 200, s.call("PATCH", s.api+"/api/v1/me", tok, map[string]string{"nickname": "推送"}).Status)
			setPhone := func() {
				code := s.deviceData("/emulator/phone", map[string]any{"appid": c.app, "openid": openid, "phone": "13600001234"})["code"]
				require.Equal(t, 200, s.call("POST", s.api+"/api/v1/me/phone", tok, map[string]string{"code": code}).Status)
			}
			setPhone()
			up := s.upload(s.api+"/api/v1/me/avatar", tok, "file", pngImage(t, 10))
			require.Equal(t, 200, up.Status, "%s", up.Raw)
			me := func() reply { return s.call("GET", s.api+"/api/v1/me", otherTok, nil) }
			ev := func(event string, extra map[string]any) map[string]any {
				f := map[string]any{"appid": c.app, "event": event, "openid": openid, "format": c.format}
				for k, v := range extra {
					f[k] = v
				}
				return f
			}

			// A bad signature: 401, nothing changes.
			status, _ := pushed(s.push(ev("user_authorization_cancellation", map[string]any{"bad_signature": true})))
			require.Equal(t, 401, status)
			require.Equal(t, 200, s.greet(tok).Status)
			require.Len(t, me().Body["identities"], 2)

			// The phone authorization withdrawn: the phone goes, the rest stays.
			revoke := s.push(ev("user_authorization_revoke", map[string]any{"revoke_info": "8"}))
			status, body := pushed(revoke)
			require.Equal(t, 200, status)
			require.Equal(t, "success", body)
			require.Nil(t, me().Body["phone"])
			require.Equal(t, "推送", me().Body["nickname"])
			// The same request again (a replay, or WeChat's retry) acts no more.
			setPhone()
			status, body = s.replay(revoke)
			require.Equal(t, 200, status)
			require.Equal(t, "success", body)
			require.Equal(t, "13600001234", me().Body["phone"], "a replay is harmless")

			// WeChat cleaned up a risky profile: nickname and avatar go, the file too.
			status, _ = pushed(s.push(ev("user_info_modified", nil)))
			require.Equal(t, 200, status)
			require.Empty(t, me().Body["nickname"])
			require.Empty(t, me().Body["avatar_url"])
			entries, err := os.ReadDir(s.cfg.Avatar.Dir)
			require.NoError(t, err)
			require.Empty(t, entries, "the uploaded avatar file is removed")

			// Ignored: another event, an event without OpenID.
			status, body = pushed(s.push(ev("wxa_media_check", nil)))
			require.Equal(t, 200, status)
			require.Equal(t, "success", body)
			status, _ = pushed(s.push(map[string]any{"appid": c.app, "event": "user_authorization_cancellation", "format": c.format}))
			require.Equal(t, 200, status)
			require.NotEmpty(t, s.logs.FilterMessage("user-authorization event without OpenID ignored").All())
			require.Len(t, me().Body["identities"], 2)

			// The WeChat account cancelled: that identity goes and its sessions end;
			// the person's other app goes on.
			status, _ = pushed(s.push(ev("user_authorization_cancellation", nil)))
			require.Equal(t, 200, status)
			refused(t, s.greet(tok), "revoked", "the cancelled identity's session")
			require.Equal(t, []string{c.other + "/" + otherOpenID}, identities(me().Body))
			// Its last identity cancelled too: the user is deleted.
			status, _ = pushed(s.push(map[string]any{"appid": c.other, "event": "user_authorization_cancellation", "openid": otherOpenID, "format": c.format}))
			require.Equal(t, 200, status)
			refused(t, s.greet(otherTok), "user_deleted", "the user went with the last identity")
			_, again := s.loginVia(c.app, openid, "u-push")
			require.NotEqual(t, userID(r), userID(again), "a later login is a new user")
		})
	}
}
