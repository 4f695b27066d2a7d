package alipay_test

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/rsakey"
	"github.com/wxlogin/wxlogin/modules/alipay"
	"github.com/wxlogin/wxlogin/modules/alipay/alipayemu"
)

const (
	appID    = "2021000000000001"
	otherApp = "2021000000000002"
	aesKey   = "S0VZLWZvci10ZXN0cy0xMg==" // 16 bytes, test only
)

// Keys made once per test binary: RSA generation is slow.
var (
	keysOnce              sync.Once
	appKeyPEM, appKey2PEM string
	emuKey, strangerKey   *rsa.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		b, err := os.ReadFile("testdata/app_private_pkcs1.pem")
		if err != nil {
			panic(err)
		}
		appKeyPEM = string(b)
		gen := func() *rsa.PrivateKey {
			k, err := rsakey.Generate()
			if err != nil {
				panic(err)
			}
			return k
		}
		k2 := gen()
		appKey2PEM, _ = rsakey.PrivateKeyPEM(k2)
		emuKey, strangerKey = gen(), gen()
	})
}

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

// env is an Alipay emulator mounted the way the application mounts it,
// with two apps.
type env struct {
	emu  *alipayemu.Emulator
	srv  *httptest.Server
	clk  *clock
	logs *observer.ObservedLogs
	log  *zap.Logger
	// wrap, when set, sits between the client and the emulator (tamper tests).
	wrap func(http.Handler) http.Handler
}

func newEnv(t *testing.T, opts ...alipayemu.Option) *env {
	t.Helper()
	keys(t)
	clk := &clock{now: time.Date(2024, 5, 1, 10, 0, 30, 0, time.UTC)}
	e := &env{clk: clk}
	emu, err := alipayemu.New(config.Apps{
		{Platform: "alipay", AppID: appID, PrivateKey: appKeyPEM, AESKey: aesKey},
		{Platform: "alipay", AppID: otherApp, PrivateKey: appKey2PEM},
	}, emuKey, append([]alipayemu.Option{alipayemu.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e.emu = emu
	mux := http.NewServeMux()
	mux.Handle("/alipay/", http.StripPrefix("/alipay", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.wrap != nil {
			e.wrap(emu.Handler()).ServeHTTP(w, r)
			return
		}
		emu.Handler().ServeHTTP(w, r)
	})))
	mux.Handle("/emulator/alipay/", http.StripPrefix("/emulator/alipay", emu.DeviceHandler()))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	core, logs := observer.New(zap.DebugLevel)
	e.logs, e.log = logs, zap.New(core)
	return e
}

func (e *env) app() config.App {
	return config.App{Platform: "alipay", AppID: appID, Kind: config.KindMiniProgram, BaseURL: e.srv.URL + "/alipay",
		PrivateKey: appKeyPEM, AlipayPublicKey: e.emu.PublicKeyPEM(), AESKey: aesKey}
}

func (e *env) client(t testing.TB, edit func(*config.App), opts ...alipay.Option) *alipay.HTTPClient {
	t.Helper()
	a := e.app()
	if edit != nil {
		edit(&a)
	}
	c, err := alipay.NewClient(config.Apps{a}, append([]alipay.Option{alipay.WithLogger(e.log)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func (e *env) login(t testing.TB, req alipayemu.LoginRequest) alipayemu.LoginResponse {
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

// signedBody is a gateway answer with node under name, signed by key over
// node's exact bytes.
func signedBody(t testing.TB, key *rsa.PrivateKey, name, node string) string {
	t.Helper()
	sig, err := alipay.SignBytes(key, []byte(node))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{%q:%s,"sign":%q}`, name, node, sig)
}

const tokenNode = "alipay_system_oauth_token_response"

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// newServer serves emu mounted under /alipay and returns its URL.
func newServer(t *testing.T, emu *alipayemu.Emulator) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/alipay/", http.StripPrefix("/alipay", emu.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
