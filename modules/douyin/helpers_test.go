package douyin_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/douyin"
	"github.com/wxlogin/wxlogin/modules/douyin/douyinemu"
)

// Values that must never leak into errors or logs.
const (
	appID     = "tt5daf2b0000007910"
	secret    = "DOUYIN-APPSECRET-must-not-leak-0123"
	otherApp  = "tt0000000000000002"
	otherPass = "DOUYIN-OTHER-SECRET-must-not-leak"
)

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

// env is a Douyin emulator mounted the way the application mounts it.
type env struct {
	emu  *douyinemu.Emulator
	srv  *httptest.Server
	clk  *clock
	logs *observer.ObservedLogs
	log  *zap.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &clock{now: time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)}
	emu := douyinemu.New(config.Apps{
		{Platform: "douyin", AppID: appID, Secret: secret},
		{Platform: "douyin", AppID: otherApp, Secret: otherPass},
	}, douyinemu.WithClock(clk.Now))
	mux := http.NewServeMux()
	mux.Handle("/douyin/", http.StripPrefix("/douyin", emu.Handler()))
	mux.Handle("/emulator/douyin/", http.StripPrefix("/emulator/douyin", emu.DeviceHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	core, logs := observer.New(zap.DebugLevel)
	return &env{emu: emu, srv: srv, clk: clk, logs: logs, log: zap.New(core)}
}

func (e *env) app() config.App {
	return config.App{Platform: "douyin", AppID: appID, Secret: secret, Kind: config.KindMiniProgram, BaseURL: e.srv.URL + "/douyin"}
}

func (e *env) client(t testing.TB, edit func(*config.App), opts ...douyin.Option) *douyin.HTTPClient {
	t.Helper()
	a := e.app()
	if edit != nil {
		edit(&a)
	}
	c, err := douyin.NewClient(config.Apps{a}, append([]douyin.Option{douyin.WithLogger(e.log)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func (e *env) login(t testing.TB, req douyinemu.LoginRequest) douyinemu.LoginResponse {
	t.Helper()
	if req.AppID == "" {
		req.AppID = appID
	}
	res, err := e.emu.Login(req)
	if err != nil {
		t.Fatalf("emulator login: %v", err)
	}
	return res
}

func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the client must refuse this
}
