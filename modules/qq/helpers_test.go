package qq_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/qq"
	"github.com/wxlogin/wxlogin/modules/qq/qqemu"
)

// Values that must never leak into errors or logs.
const (
	appID     = "1101234567"
	secret    = "QQ-APPSECRET-must-not-leak-0123456789"
	otherApp  = "1109999999"
	otherPass = "QQ-OTHER-SECRET-must-not-leak"
)

// clock is a settable clock.
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

// env is a QQ emulator on a loopback port, mounted the way the application
// mounts it (wire under /qq, device API under /emulator/qq), with a clock.
type env struct {
	emu  *qqemu.Emulator
	srv  *httptest.Server
	clk  *clock
	logs *observer.ObservedLogs
	log  *zap.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &clock{now: time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)}
	emu := qqemu.New(config.Apps{
		{Platform: "qq", AppID: appID, Secret: secret},
		{Platform: "qq", AppID: otherApp, Secret: otherPass},
		{Platform: "wechat", AppID: "wx-not-mine", Secret: "x"},
	}, qqemu.WithClock(clk.Now))
	mux := http.NewServeMux()
	mux.Handle("/qq/", http.StripPrefix("/qq", emu.Handler()))
	mux.Handle("/emulator/qq/", http.StripPrefix("/emulator/qq", emu.DeviceHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	core, logs := observer.New(zap.DebugLevel)
	return &env{emu: emu, srv: srv, clk: clk, logs: logs, log: zap.New(core)}
}

// app is the QQ app as configured against the emulator.
func (e *env) app() config.App {
	return config.App{Platform: "qq", AppID: appID, Secret: secret, Kind: config.KindMiniProgram, BaseURL: e.srv.URL + "/qq"}
}

// client builds a client for app (edit adjusts it).
func (e *env) client(t testing.TB, edit func(*config.App), opts ...qq.Option) *qq.HTTPClient {
	t.Helper()
	a := e.app()
	if edit != nil {
		edit(&a)
	}
	c, err := qq.NewClient(config.Apps{a}, append([]qq.Option{qq.WithLogger(e.log)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func (e *env) login(t testing.TB, req qqemu.LoginRequest) qqemu.LoginResponse {
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
