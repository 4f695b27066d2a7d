package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

const (
	testAppID  = "wx1234567890abcdef"
	testSecret = "0123456789abcdef0123456789abcdef"
)

// testApps is the one mini program the tests' emulator serves.
var testApps = emulator.SingleApp(testAppID, testSecret)

// testConfig is the WeChat section pointing at it.
var testConfig = config.WeChat{AppID: testAppID, Secret: testSecret}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is an emulator on a loopback port with a fake clock.
type env struct {
	t   *testing.T
	emu *emulator.Emulator
	url string
	clk *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// In the middle of a minute, so that quota windows are predictable.
	clk := &clock{now: time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)}
	emu, u := emulator.NewTestServer(t, testApps, emulator.WithClock(clk.Now))
	return &env{t: t, emu: emu, url: u, clk: clk}
}

// answer is one HTTP answer.
type answer struct {
	status int
	ctype  string
	raw    []byte
	json   map[string]any
}

func (a answer) num(key string) int {
	f, _ := a.json[key].(float64)
	return int(f)
}

func (a answer) str(key string) string {
	s, _ := a.json[key].(string)
	return s
}

func (e *env) do(method, path string, query url.Values, body []byte) answer {
	e.t.Helper()
	u := e.url + path
	if query != nil {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	require.NoError(e.t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	a := answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &a.json)
	}
	return a
}

func (e *env) get(path string, query url.Values) answer {
	e.t.Helper()
	return e.do(http.MethodGet, path, query, nil)
}

func (e *env) post(path string, query url.Values, body any) answer {
	e.t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	default:
		var err error
		b, err = json.Marshal(v)
		require.NoError(e.t, err)
	}
	return e.do(http.MethodPost, path, query, b)
}

var ridPattern = `, rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`

// requireWire checks the shape every WeChat answer has.
func requireWire(t *testing.T, a answer) {
	t.Helper()
	require.Equal(t, http.StatusOK, a.status, "WeChat answers errors with HTTP 200: %s", a.raw)
	require.Equal(t, "text/plain", a.ctype)
	require.NotNil(t, a.json, "the body must be a JSON object: %s", a.raw)
}

// requireErrcode checks an error answer: HTTP 200, text/plain,
// {"errcode":code,"errmsg":"<msg>, rid: …"} and nothing else.
func requireErrcode(t *testing.T, a answer, code int, msg string) {
	t.Helper()
	requireWire(t, a)
	require.Equal(t, code, a.num("errcode"), "body: %s", a.raw)
	require.Regexp(t, "^"+regexp.QuoteMeta(msg)+ridPattern, a.str("errmsg"))
	require.Len(t, a.json, 2, "an error body has errcode and errmsg only: %s", a.raw)
}

func requireOK(t *testing.T, a answer) {
	t.Helper()
	requireWire(t, a)
	require.Equal(t, 0, a.num("errcode"), "body: %s", a.raw)
	require.Equal(t, "ok", a.str("errmsg"))
}

// login is the device's wx.login.
func (e *env) login(req emulator.LoginRequest) emulator.LoginResponse {
	e.t.Helper()
	res, err := e.emu.Login(req)
	require.NoError(e.t, err)
	return res
}

func (e *env) code2Session(code string) answer {
	e.t.Helper()
	return e.get(emulator.PathCode2Session, url.Values{
		"appid": {testAppID}, "secret": {testSecret}, "js_code": {code}, "grant_type": {"authorization_code"},
	})
}

func (e *env) fetchToken() string {
	e.t.Helper()
	a := e.get(emulator.PathToken, url.Values{"grant_type": {"client_credential"}, "appid": {testAppID}, "secret": {testSecret}})
	requireWire(e.t, a)
	require.NotEmpty(e.t, a.str("access_token"), "body: %s", a.raw)
	return a.str("access_token")
}

func (e *env) stableToken(force bool) answer {
	e.t.Helper()
	return e.post(emulator.PathStableToken, nil, map[string]any{
		"grant_type": "client_credential", "appid": testAppID, "secret": testSecret, "force_refresh": force,
	})
}

// checkSession calls /wxa/checksession as our server would.
func (e *env) checkSession(token, openID, sessionKey string) answer {
	e.t.Helper()
	return e.get(emulator.PathCheckSession, url.Values{
		"access_token": {token}, "openid": {openID}, "sig_method": {"hmac_sha256"},
		"signature": {wxcrypto.SessionSignature(sessionKey, nil)},
	})
}

// tokenErrcode reports what an API that takes an access token says about token.
func (e *env) tokenErrcode(token string) int {
	e.t.Helper()
	u := e.login(emulator.LoginRequest{})
	a := e.checkSession(token, u.OpenID, u.SessionKey)
	requireWire(e.t, a)
	return a.num("errcode")
}

// device calls the device API and decodes its answer.
func (e *env) device(method, path string, body string) answer {
	e.t.Helper()
	return e.do(method, path, nil, []byte(body))
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
