package wechatpush_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/msgcrypt"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechatpush"
)

const (
	plainApp = "wxPlain000000001"
	safeApp  = "wxSafe0000000002"
	token    = "pushToken123"
	aesKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

// env is the push handlers on a real store (SQLite).
type env struct {
	t     *testing.T
	app   *fiber.App
	users *user.EntStore
	seen  wechatpush.Seen
	logs  *observer.ObservedLogs
	mu    sync.Mutex
	heard []user.Event
	now   time.Time
}

func newEnv(t *testing.T) *env { return newEnvOn(t, testutil.SQLite(t)) }

func newEnvOn(t *testing.T, client *ent.Client) *env {
	e := &env{t: t, now: time.Now()}
	e.users = user.NewEntStore(client, user.WithListeners(func(_ context.Context, ev user.Event) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.heard = append(e.heard, ev)
	}))
	core, logs := observer.New(zap.DebugLevel)
	e.logs = logs
	e.seen = wechatpush.NewMemorySeen(100, nil)
	h, err := wechatpush.New(wechatpush.Params{
		Apps: config.Apps{
			{Platform: "wechat", AppID: plainApp, PushToken: token},
			{Platform: "wechat", AppID: safeApp, PushToken: token, PushAESKey: aesKey},
			{Platform: "wechat", AppID: "wxNoPush", Secret: "s"},
		},
		Users: e.users, Seen: e.seen, Logger: zap.New(core),
	})
	require.NoError(t, err)
	h.WithClock(func() time.Time { return e.now })
	e.app = fiber.New(fiber.Config{ErrorHandler: httpserver.ErrorHandler(zap.NewNop())})
	h.Register(e.app)
	return e
}

func (e *env) events() []user.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]user.Event(nil), e.heard...)
}

// pushReq is one push as WeChat would send it.
type pushReq struct {
	appid, format string
	fields        map[string]any
	safe          bool
	ts            int64
	nonce         string
	tamper        bool
}

// body renders fields in the format.
func body(format string, fields map[string]any) string {
	if format == "xml" {
		var b strings.Builder
		b.WriteString("<xml>")
		for k, v := range fields {
			if n, ok := v.(int64); ok {
				fmt.Fprintf(&b, "<%s>%d</%s>", k, n, k)
			} else {
				fmt.Fprintf(&b, "<%s><![CDATA[%v]]></%s>", k, v, k)
			}
		}
		b.WriteString("</xml>")
		return b.String()
	}
	var parts []string
	for k, v := range fields {
		if n, ok := v.(int64); ok {
			parts = append(parts, fmt.Sprintf("%q:%d", k, n))
		} else {
			parts = append(parts, fmt.Sprintf("%q:%q", k, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (e *env) send(p pushReq) (int, string) {
	e.t.Helper()
	if p.ts == 0 {
		p.ts = e.now.Unix()
	}
	if p.nonce == "" {
		p.nonce = testutil.RandomName("n")
	}
	ts := strconv.FormatInt(p.ts, 10)
	q := url.Values{"timestamp": {ts}, "nonce": {p.nonce}, "signature": {msgcrypt.Signature(token, ts, p.nonce)}, "openid": {"oSender"}}
	raw := body(p.format, p.fields)
	if p.safe {
		k, err := msgcrypt.ParseKey(aesKey)
		require.NoError(e.t, err)
		enc, err := k.Encrypt([]byte(raw), p.appid)
		require.NoError(e.t, err)
		raw = body(p.format, map[string]any{"ToUserName": "gh_x", "Encrypt": enc})
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", msgcrypt.Signature(token, ts, p.nonce, enc))
	}
	if p.tamper {
		q.Set("signature", strings.Repeat("0", 40))
		q.Set("msg_signature", strings.Repeat("0", 40))
	}
	req := httptest.NewRequest("POST", "/wechat/push/"+p.appid+"?"+q.Encode(), strings.NewReader(raw))
	resp, err := e.app.Test(req, -1)
	require.NoError(e.t, err)
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func event(name, openid string, extra map[string]any) map[string]any {
	f := map[string]any{"ToUserName": "gh_x", "FromUserName": "oSender", "CreateTime": time.Now().UnixNano(), "MsgType": "event", "Event": name}
	if openid != "" {
		f["OpenID"] = openid
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func login(t *testing.T, s *user.EntStore, appid, openid string) int {
	t.Helper()
	ctx := context.Background()
	r, err := s.Login(ctx, user.LoginInput{Provider: "wechat", Kind: "miniprogram", AppID: appid, OpenID: openid, SessionKey: "k"})
	require.NoError(t, err)
	_, err = s.UpdateProfile(ctx, r.User.ID, user.ProfileUpdate{Nickname: ptr("小明"), AvatarURL: ptr("https://example.com/a.png")})
	require.NoError(t, err)
	_, err = s.SetPhone(ctx, r.User.ID, user.Phone{PureNumber: "13800000000"})
	require.NoError(t, err)
	return r.User.ID
}

func ptr(s string) *string { return &s }

func TestEventsInEveryModeAndFormat(t *testing.T) {
	for _, mode := range []struct {
		appid string
		safe  bool
	}{{plainApp, false}, {safeApp, true}} {
		for _, format := range []string{"json", "xml"} {
			t.Run(fmt.Sprintf("%s/%s", mode.appid, format), func(t *testing.T) {
				e := newEnv(t)
				ctx := context.Background()
				id := login(t, e.users, mode.appid, "o-1")
				send := func(f map[string]any) {
					t.Helper()
					status, b := e.send(pushReq{appid: mode.appid, format: format, safe: mode.safe, fields: f})
					require.Equal(t, 200, status, b)
					require.Equal(t, "success", b)
				}

				send(event("user_authorization_revoke", "o-1", map[string]any{"AppID": mode.appid, "RevokeInfo": "8"}))
				u, err := e.users.Get(ctx, id)
				require.NoError(t, err)
				require.Nil(t, u.Phone, "the phone went with its authorization")
				require.Equal(t, "小明", u.Nickname)

				send(event("user_info_modified", "o-1", map[string]any{"AppID": mode.appid}))
				u, err = e.users.Get(ctx, id)
				require.NoError(t, err)
				require.Empty(t, u.Nickname)
				require.Empty(t, u.AvatarURL)

				send(event("user_authorization_cancellation", "o-1", map[string]any{"AppID": mode.appid}))
				_, err = e.users.Get(ctx, id)
				require.ErrorIs(t, err, user.ErrNotFound, "the last identity took the user with it")

				var kinds []string
				for _, ev := range e.events() {
					kinds = append(kinds, fmt.Sprintf("%T", ev))
				}
				require.Equal(t, []string{"user.Registered", "user.LoggedIn", "user.ProfileCleared", "user.ProfileCleared", "user.Deleted"}, kinds)
				require.Equal(t, user.ProfileCleared{UserID: id, Fields: []user.Field{user.FieldPhone}, Cause: "wechat:user_authorization_revoke", RevokeInfo: []int{8}}, e.events()[2])
				require.Equal(t, user.Deleted{UserID: id, Cause: user.CausePlatform}, e.events()[4])
			})
		}
	}
}

func TestRefusedAndIgnored(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := login(t, e.users, plainApp, "o-2")
	safeID := login(t, e.users, safeApp, "o-2")
	unchanged := func() {
		t.Helper()
		for _, uid := range []int{id, safeID} {
			u, err := e.users.Get(ctx, uid)
			require.NoError(t, err)
			require.Equal(t, "小明", u.Nickname)
			require.NotNil(t, u.Phone)
		}
		for _, ev := range e.events() {
			_, registered := ev.(user.Registered)
			_, loggedIn := ev.(user.LoggedIn)
			require.True(t, registered || loggedIn, "nobody was told anything: %T", ev)
		}
	}
	cancel := event("user_authorization_cancellation", "o-2", nil)

	// Bad signatures and stale timestamps: 401, nothing done.
	for _, p := range []pushReq{
		{appid: plainApp, format: "json", fields: cancel, tamper: true},
		{appid: safeApp, format: "xml", fields: cancel, safe: true, tamper: true},
		{appid: safeApp, format: "json", fields: cancel}, // plain push to an app that wants them encrypted
		{appid: plainApp, format: "json", fields: cancel, ts: e.now.Add(-wechatpush.MaxSkew - time.Minute).Unix()},
		{appid: plainApp, format: "json", fields: cancel, ts: e.now.Add(wechatpush.MaxSkew + time.Minute).Unix()},
	} {
		status, b := e.send(p)
		require.Equal(t, 401, status, "%+v: %s", p, b)
		require.Contains(t, b, "invalid_signature")
	}
	unchanged()

	// Not ours: 404.
	for _, appid := range []string{"wxNoPush", "wxUnknown"} {
		status, _ := e.send(pushReq{appid: appid, format: "json", fields: cancel})
		require.Equal(t, 404, status)
	}

	// Ignored, answered success: unknown events, other messages, no OpenID,
	// another app's AppID, a user nobody knows, a body that is no message.
	for _, f := range []map[string]any{
		event("wxa_media_check", "o-2", nil),
		{"ToUserName": "gh_x", "FromUserName": "o-2", "CreateTime": int64(1), "MsgType": "text", "Content": "hello"},
		event("user_authorization_cancellation", "", nil),
		event("user_authorization_cancellation", "o-2", map[string]any{"AppID": "wxOther"}),
		event("user_authorization_cancellation", "o-nobody", nil),
	} {
		for _, p := range []pushReq{{appid: plainApp, format: "json", fields: f}, {appid: safeApp, format: "xml", fields: f, safe: true}} {
			status, b := e.send(p)
			require.Equal(t, 200, status, b)
			require.Equal(t, "success", b)
		}
	}
	require.NotEmpty(t, e.logs.FilterMessage("user-authorization event without OpenID ignored").All())
	unchanged()

	// The URL check.
	ts := strconv.FormatInt(e.now.Unix(), 10)
	verify := func(sig, echo string) (int, string) {
		q := url.Values{"timestamp": {ts}, "nonce": {"n1"}, "signature": {sig}, "echostr": {echo}}
		resp, err := e.app.Test(httptest.NewRequest("GET", "/wechat/push/"+safeApp+"?"+q.Encode(), nil), -1)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, b := verify(msgcrypt.Signature(token, ts, "n1"), "echo-12345")
	require.Equal(t, 200, status)
	require.Equal(t, "echo-12345", b, "exactly echostr")
	status, _ = verify(msgcrypt.Signature("other", ts, "n1"), "echo-12345")
	require.Equal(t, 401, status)
}

func TestReplaysActOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := login(t, e.users, safeApp, "o-3")
	f := event("user_authorization_revoke", "o-3", map[string]any{"RevokeInfo": "6"})
	p := pushReq{appid: safeApp, format: "json", fields: f, safe: true, nonce: "same-nonce"}
	for range 3 {
		status, b := e.send(p) // the very same request (timestamp, nonce), encrypted afresh
		require.Equal(t, 200, status, b)
	}
	p.nonce = "another-nonce"
	status, _ := e.send(p) // the same event in another request: WeChat's retry
	require.Equal(t, 200, status)
	cleared := 0
	for _, ev := range e.events() {
		if _, ok := ev.(user.ProfileCleared); ok {
			cleared++
		}
	}
	require.Equal(t, 1, cleared, "acted on once")
	u, err := e.users.Get(ctx, id)
	require.NoError(t, err)
	require.Empty(t, u.Nickname)
}

// TestFailureLetsWeChatRetry: while the database does not answer a push is
// a 503 and not remembered, so WeChat's retry (the same request) is handled.
func TestFailureLetsWeChatRetry(t *testing.T) {
	cfg := testutil.MariaDBConfig(t)
	proxy := testutil.NewProxy(t, testutil.MariaDBAddr)
	e := newEnvOn(t, testutil.Open(t, testutil.MariaDBVia(t, cfg, proxy.Addr())))
	login(t, e.users, plainApp, "o-4")
	p := pushReq{appid: plainApp, format: "json", fields: event("user_info_modified", "o-4", nil), nonce: "n-retry"}

	proxy.Stop()
	status, _ := e.send(p)
	require.Equal(t, 503, status, "the database did not answer: WeChat retries")
	proxy.Start(t)
	status, b := e.send(p)
	require.Equal(t, 200, status, b)
	u, err := e.users.UserOf(context.Background(), user.IdentityKey{Provider: "wechat", AppID: plainApp, OpenID: "o-4"})
	require.NoError(t, err)
	require.Empty(t, u.Nickname, "the retry was handled, not taken for a replay")
}
