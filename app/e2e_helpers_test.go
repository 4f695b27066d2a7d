package main

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// service is one running instance of the real fx application.
type service struct {
	t    testing.TB
	cfg  *config.Config
	api  string // http://host:port of the API
	emu  string // http://host:port of the WeChat emulator
	logs *observer.ObservedLogs
	http *http.Client

	mu      sync.Mutex
	secrets []string // handed-out values that must never be logged
}

// freeAddr returns a loopback address nothing listens on right now
// (testutil.FreeAddr: outside the ephemeral range).
func freeAddr(testing.TB) string { return testutil.FreeAddr() }

// strategyVars are the settings of each token strategy under test.
func strategyVars(t testing.TB, strategy string) map[string]string {
	vars := map[string]string{"APP_TOKEN_STRATEGY": strategy}
	if strategy == "redis" {
		r := testutil.RedisConfig(t)
		vars["APP_REDIS_ADDR"] = r.Addr
		vars["APP_REDIS_PREFIX"] = r.Prefix
	}
	return vars
}

// boot starts the application with the in-process emulator, on fresh
// ports, a private data directory (SQLite file) and the given variables.
func boot(t testing.TB, vars map[string]string) *service {
	t.Helper()
	return bootConfig(t, testConfigFor(t, vars))
}

// testConfigFor is the configuration boot uses: fresh ports, a private data
// directory, a random token secret, then vars.
func testConfigFor(t testing.TB, vars map[string]string) *config.Config {
	t.Helper()
	all := map[string]string{
		"APP_HTTP_ADDR":            freeAddr(t),
		"APP_TOKEN_SECRET":         testutil.RandomName("secret-for-tests-only-") + testutil.RandomName("-"),
		"APP_WECHAT_EMULATOR_ADDR": freeAddr(t),
	}
	for k, v := range vars {
		all[k] = v
	}
	return testutil.Config(t, all)
}

func bootConfig(t testing.TB, cfg *config.Config, extra ...fx.Option) *service {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	return bootLogged(t, cfg, zap.New(core), logs, extra...)
}

// bootLogged starts the application with the given logger; logs, when not
// nil, is checked for secrets at the end.
func bootLogged(t testing.TB, cfg *config.Config, logger *zap.Logger, logs *observer.ObservedLogs, extra ...fx.Option) *service {
	t.Helper()
	if logs == nil {
		_, logs = observer.New(zap.DebugLevel)
	}
	var srv *httpserver.Server
	opts := append([]fx.Option{
		Options(cfg),
		fx.Decorate(func(*zap.Logger) *zap.Logger { return logger }),
		fx.Populate(&srv),
	}, extra...)
	if os.Getenv("WXLOGIN_TEST_FXLOG") != "" { // see fx's lifecycle events while debugging
		opts = append(opts, fx.WithLogger(func() fxevent.Logger { return &fxevent.ZapLogger{Logger: zap.NewExample()} }))
	}
	app := fxtest.New(t, opts...)
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	s := &service{
		t: t, cfg: cfg, logs: logs,
		api:  "http://" + srv.Addr(),
		emu:  "http://" + cfg.WeChat.EmulatorAddr,
		http: &http.Client{Timeout: 30 * time.Second},
	}
	t.Cleanup(func() { s.assertNoSecretsLogged() })
	return s
}

// reply is a decoded JSON answer.
type reply struct {
	Status int
	Body   map[string]any
	Raw    []byte
	Header http.Header
}

// ErrorCode is the "error.code" of an error answer.
func (r reply) ErrorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// ErrorReason is the "error.reason" of an error answer ("" when absent).
func (r reply) ErrorReason() string {
	e, _ := r.Body["error"].(map[string]any)
	reason, _ := e["reason"].(string)
	return reason
}

// Str returns a top-level string field.
func (r reply) Str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// User returns the "user" object of a login answer.
func (r reply) User() map[string]any {
	u, _ := r.Body["user"].(map[string]any)
	return u
}

// do sends req. An exchange with the API (not the emulator) is checked
// against the OpenAPI document (see checkAgainstDoc).
func (s *service) do(req *http.Request) reply {
	s.t.Helper()
	api := strings.HasPrefix(req.URL.String(), s.api+"/")
	var reqBody []byte
	if api && req.Body != nil {
		var err error
		reqBody, err = io.ReadAll(req.Body)
		require.NoError(s.t, err)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := s.http.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	if api {
		s.checkAgainstDoc(req, reqBody, resp, raw)
	}
	r := reply{Status: resp.StatusCode, Raw: raw, Header: resp.Header}
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &r.Body), "every answer is JSON: %s %s → %d %q", req.Method, req.URL.Path, resp.StatusCode, raw)
	}
	if resp.StatusCode >= 400 {
		require.NotEmpty(s.t, r.ErrorCode(), "error answers carry a code: %s", raw)
	}
	return r
}

// call sends body (a string is sent as is, anything else as JSON) with an
// optional bearer token.
func (s *service) call(method, url, bearer string, body any) reply {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(s.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(s.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return s.do(req)
}

// upload sends a multipart form with data in field.
func (s *service) upload(url, bearer, field string, data []byte) reply {
	s.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, err := w.CreateFormFile(field, "tmp_avatar.jpg")
	require.NoError(s.t, err)
	_, _ = fw.Write(data)
	require.NoError(s.t, w.Close())
	req, err := http.NewRequest("POST", url, &buf)
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return s.do(req)
}

// device is a mini program user on the emulator's device side.
type device struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
	Code       string `json:"code"`
	SessionKey string `json:"session_key"`
}

// wxLogin is what wx.login gives the device.
func (s *service) wxLogin(openid string) device {
	s.t.Helper()
	body := map[string]any{}
	if openid != "" {
		body["openid"] = openid
	}
	r := s.call("POST", s.emu+"/emulator/login", "", body)
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	var d device
	require.NoError(s.t, json.Unmarshal(r.Raw, &d))
	require.NotEmpty(s.t, d.Code)
	return d
}

// login runs wx.login then our login and returns the answer.
func (s *service) login(openid string) (device, reply) {
	s.t.Helper()
	d := s.wxLogin(openid)
	r := s.call("POST", s.api+"/api/v1/auth/login", "", map[string]string{"code": d.Code})
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	return d, r
}

// emulatorCalls returns how often the emulator served a WeChat path.
func (s *service) emulatorCalls(path string) int {
	s.t.Helper()
	r := s.call("GET", s.emu+"/emulator/stats", "", nil)
	require.Equal(s.t, 200, r.Status)
	calls, _ := r.Body["calls"].(map[string]any)
	n, _ := calls[path].(float64)
	return int(n)
}

// assertNoSecretsLogged checks that no log line holds the AppSecret, a
// token secret, or anything shaped like a session key or token this
// service handed out. Tests register handed-out secrets with remember.
func (s *service) assertNoSecretsLogged() {
	s.mu.Lock()
	secrets := append([]string{s.cfg.WeChat.Secret, s.cfg.Token.Secret}, s.secrets...)
	s.mu.Unlock()
	for _, e := range s.logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		for _, secret := range secrets {
			if secret != "" && strings.Contains(line, secret) {
				s.t.Errorf("a secret appears in a log line: %q", e.Message)
			}
		}
	}
}

// remember marks values that must never be logged.
func (s *service) remember(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, values...)
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
