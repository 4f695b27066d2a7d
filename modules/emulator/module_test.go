package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

func moduleApp(t *testing.T, cfg config.WeChat, logger *zap.Logger, emu **emulator.Emulator) *fxtest.App {
	return fxtest.New(t,
		fx.NopLogger,
		fx.Supply(cfg, testApps, logger),
		emulator.Module,
		fx.Populate(emu),
	)
}

func TestModuleRunsTheEmulatorAndLogsNoSecrets(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := testConfig
	cfg.Emulator, cfg.EmulatorAddr = true, "127.0.0.1:0"
	var emu *emulator.Emulator
	app := moduleApp(t, cfg, zap.New(core), &emu)
	app.RequireStart()

	e := &env{t: t, emu: emu, url: emu.URL(), clk: nil}
	require.NotEmpty(t, e.url)
	dev := e.login(emulator.LoginRequest{})
	a := e.code2Session(dev.Code)
	require.Equal(t, dev.OpenID, a.str("openid"))
	requireErrcode(t, e.code2Session(dev.Code), 40163, "code been used")
	tok := e.fetchToken()
	requireOK(t, e.checkSession(tok, dev.OpenID, dev.SessionKey))
	phone, err := emu.Phone(emulator.PhoneRequest{OpenID: dev.OpenID, Phone: "13800000000"})
	require.NoError(t, err)
	requireOK(t, e.post(emulator.PathPhoneNumber, url.Values{"access_token": {tok}}, map[string]string{"code": phone.Code}))
	reset := e.get(emulator.PathResetSessionKey, url.Values{"access_token": {tok}, "openid": {dev.OpenID},
		"sig_method": {"hmac_sha256"}, "signature": {wxcrypto.SessionSignature(dev.SessionKey, nil)}})
	requireOK(t, reset)
	app.RequireStop()

	require.NotZero(t, logs.FilterMessage("wechat emulator call").Len(), "calls are logged")
	require.NotZero(t, logs.FilterMessageSnippet("listening").Len())
	var all strings.Builder
	for _, entry := range logs.All() {
		fmt.Fprintln(&all, entry.Message, entry.ContextMap())
	}
	for name, secret := range map[string]string{
		"AppSecret": testSecret, "session_key": dev.SessionKey, "new session_key": reset.str("session_key"),
		"code": dev.Code, "phone code": phone.Code, "access token": tok,
	} {
		require.NotContains(t, all.String(), secret, "the %s was logged", name)
	}
}

func TestModuleBindFailureStopsStartUp(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	cfg := testConfig
	cfg.Emulator, cfg.EmulatorAddr = true, taken.Addr().String()
	var emu *emulator.Emulator
	app := fx.New(fx.NopLogger, fx.Supply(cfg, testApps, zap.NewNop()), emulator.Module, fx.Populate(&emu))
	err = app.Start(ctxTimeout(t, 10*time.Second))
	require.Error(t, err)
	require.Contains(t, err.Error(), taken.Addr().String())
	_ = app.Stop(ctxTimeout(t, 10*time.Second))
}

func TestModuleDoesNotListenWhenDisabled(t *testing.T) {
	cfg := testConfig
	cfg.Emulator, cfg.EmulatorAddr = false, "127.0.0.1:0"
	var emu *emulator.Emulator
	app := moduleApp(t, cfg, zap.NewNop(), &emu)
	app.RequireStart()
	require.Empty(t, emu.Addr())
	app.RequireStop()
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServe(t *testing.T) {
	// Find a free port, then let Serve bind it.
	addr := testutil.FreeAddr()

	cfg := testConfig
	cfg.EmulatorAddr = addr
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- emulator.Serve(ctx, testApps, cfg.EmulatorAddr, out) }()

	var dev struct{ Code string }
	var resp *http.Response
	var err error
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, err = http.Post("http://"+addr+"/emulator/login", "application/json", strings.NewReader(`{}`))
		return err == nil
	}, "Serve does not listen on %s", addr)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&dev))
	resp.Body.Close()
	require.NotEmpty(t, dev.Code)

	// A second Serve on the same address fails at once.
	require.Error(t, emulator.Serve(context.Background(), testApps, cfg.EmulatorAddr, &syncBuffer{}))

	cancel()
	require.NoError(t, <-done)
	require.Contains(t, out.String(), "/emulator/login")
	require.NotContains(t, out.String(), testSecret)
}
