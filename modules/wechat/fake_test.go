package wechat

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
)

// Values that must never leak into errors or logs.
const (
	testAppID      = "wx1234567890abcdef"
	testSecret     = "APPSECRET-0123456789abcdef-must-not-leak"
	testSessionKey = "o0q0otL8aEzpcZL/FT9WsQ=="
	testOpenID     = "oOPENID-abc123"
)

// fakeWeChat imitates the wire of api.weixin.qq.com: errcodes at HTTP 200,
// text/plain JSON, \/ escapes, tokens that are valid until revoked.
type fakeWeChat struct {
	srv *httptest.Server

	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	valid    map[string]bool
	calls    map[string]int
	bodies   map[string][]byte
	queries  map[string]string
	seq      int
	lifetime int // expires_in of issued tokens
}

func newFake(t testing.TB) *fakeWeChat {
	f := &fakeWeChat{
		handlers: map[string]http.HandlerFunc{},
		valid:    map[string]bool{},
		calls:    map[string]int{},
		bodies:   map[string][]byte{},
		queries:  map[string]string{},
		lifetime: 7200,
	}
	f.handlers[pathToken] = f.tokenHandler
	f.handlers[pathStableToken] = f.tokenHandler
	f.handlers[pathCode2Session] = func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("appid") != testAppID || q.Get("secret") != testSecret || q.Get("grant_type") != "authorization_code" {
			writeBody(w, "text/plain", `{"errcode":40125,"errmsg":"invalid appsecret, rid: 0000-bad"}`)
			return
		}
		writeBody(w, "text/plain", `{"session_key":"o0q0otL8aEzpcZL\/FT9WsQ==","openid":"`+testOpenID+`","unionid":"oUNION"}`)
	}
	f.handlers[pathPhoneNumber] = f.withToken(func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "application/json; encoding=utf-8", `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800000000",`+
			`"purePhoneNumber":"13800000000","countryCode":"86","watermark":{"timestamp":1637744274,"appid":"`+testAppID+`"}}}`)
	})
	f.handlers[pathCheckSession] = f.withToken(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("signature") != wxcrypto.SessionSignature(testSessionKey, nil) {
			writeBody(w, "text/plain", `{"errcode":87009,"errmsg":"invalid signature rid: 6523a1b2-0f1e2d3c-4b5a6978"}`)
			return
		}
		writeBody(w, "text/plain", `{"errcode":0,"errmsg":"ok"}`)
	})
	f.handlers[pathResetSessionKey] = f.withToken(func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "text/plain", `{"errcode":0,"errmsg":"ok","openid":"`+r.URL.Query().Get("openid")+`","session_key":"bmV3LWtleS8rPQ\/\/=="}`)
	})
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWeChat) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls[r.URL.Path]++
	f.bodies[r.URL.Path] = body
	f.queries[r.URL.Path] = r.URL.RawQuery
	h := f.handlers[r.URL.Path]
	f.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

// tokenHandler issues a new valid token per call (classic and stable alike).
func (f *fakeWeChat) tokenHandler(w http.ResponseWriter, r *http.Request) {
	tok, lifetime := f.issue()
	writeBody(w, "text/plain", fmt.Sprintf(`{"access_token":"%s","expires_in":%d}`, tok, lifetime))
}

// issue makes a new valid token, as if fetched from WeChat.
func (f *fakeWeChat) issue() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	tok := fmt.Sprintf("ACCESS-TOKEN-%d-must-not-leak", f.seq)
	f.valid[tok] = true
	return tok, f.lifetime
}

func (f *fakeWeChat) revoke(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.valid, tok)
}

// withToken answers 40001 unless the access_token is valid.
func (f *fakeWeChat) withToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		ok := f.valid[r.URL.Query().Get("access_token")]
		f.mu.Unlock()
		if !ok {
			writeBody(w, "text/plain", `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest, rid: 65e1-40001"}`)
			return
		}
		h(w, r)
	}
}

func (f *fakeWeChat) handle(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[path] = h
}

func (f *fakeWeChat) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fakeWeChat) fetches() int { return f.count(pathToken) + f.count(pathStableToken) }

func (f *fakeWeChat) lastBody(path string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[path]
}

func (f *fakeWeChat) lastQuery(path string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[path]
}

func (f *fakeWeChat) config() config.WeChat {
	return config.WeChat{AppID: testAppID, Secret: testSecret, BaseURL: f.srv.URL, StableToken: true, Timeout: 5 * time.Second}
}

// client builds a client on the fake; edit adjusts the config.
func (f *fakeWeChat) client(t testing.TB, edit func(*config.WeChat), opts ...Option) *HTTPClient {
	t.Helper()
	cfg := f.config()
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg, opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func writeBody(w http.ResponseWriter, ctype, body string) {
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	_, _ = io.WriteString(w, body)
}

func errcodeBody(code int, msg string) string {
	b, _ := json.Marshal(map[string]any{"errcode": code, "errmsg": msg})
	return string(b)
}

// observed returns a logger that records everything at debug level.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
