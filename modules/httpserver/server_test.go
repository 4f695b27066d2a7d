package httpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/health"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/user"
)

type errBody struct {
	Error httpserver.Body `json:"error"`
}

func do(t *testing.T, app *fiber.App, req *http.Request) (int, errBody, http.Header) {
	t.Helper()
	resp, err := app.Test(req, -1)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var b errBody
	if resp.StatusCode >= 400 {
		require.NoError(t, json.Unmarshal(raw, &b), "error bodies are JSON: %s", raw)
		require.NotEmpty(t, b.Error.Code)
		require.NotEmpty(t, b.Error.Message)
	}
	return resp.StatusCode, b, resp.Header
}

func newApp(t *testing.T) (*fiber.App, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	app := httpserver.NewApp(config.HTTP{BodyLimit: 1024}, zap.New(core))
	type payload struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	app.Post("/echo", func(c *fiber.Ctx) error {
		var p payload
		if err := httpserver.DecodeJSON(c, &p); err != nil {
			return err
		}
		return c.JSON(p)
	})
	app.Get("/panic", func(c *fiber.Ctx) error { panic("boom") })
	app.Get("/fail", func(c *fiber.Ctx) error { return errors.New("database exploded: password=hunter2") })
	app.Get("/validation", func(c *fiber.Ctx) error {
		return &user.ValidationError{Field: "nickname", Reason: "must not be empty"}
	})
	return app, logs
}

func TestErrorsAreJSON(t *testing.T) {
	app, logs := newApp(t)
	cases := []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"unknown route", httptest.NewRequest("GET", "/nope", nil), 404, "not_found"},
		{"panic", httptest.NewRequest("GET", "/panic", nil), 500, "internal_error"},
		{"unexpected error", httptest.NewRequest("GET", "/fail", nil), 500, "internal_error"},
		{"validation", httptest.NewRequest("GET", "/validation", nil), 400, "invalid_nickname"},
		{"empty body", httptest.NewRequest("POST", "/echo", nil), 400, "invalid_json"},
		{"not JSON", httptest.NewRequest("POST", "/echo", strings.NewReader("name=a+b")), 400, "invalid_json"},
		{"array", httptest.NewRequest("POST", "/echo", strings.NewReader(`[1]`)), 400, "invalid_json"},
		{"wrong type", httptest.NewRequest("POST", "/echo", strings.NewReader(`{"count":"x"}`)), 400, "invalid_json"},
		{"truncated", httptest.NewRequest("POST", "/echo", strings.NewReader(`{"name":"a`)), 400, "invalid_json"},
		{"trailing", httptest.NewRequest("POST", "/echo", strings.NewReader(`{"name":"a"} {}`)), 400, "invalid_json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, _ := do(t, app, c.req)
			require.Equal(t, c.status, status)
			require.Equal(t, c.code, body.Error.Code)
			require.NotContains(t, body.Error.Message, "hunter2", "causes are logged, not shown")
		})
	}
	_, body, _ := do(t, app, httptest.NewRequest("POST", "/echo", strings.NewReader(`{"count":"x"}`)))
	require.Contains(t, body.Error.Message, `"count"`, "the message names the field")
	_, body, _ = do(t, app, httptest.NewRequest("POST", "/echo", strings.NewReader("name=a+b")))
	require.Contains(t, body.Error.Message, "form-encoded")
	require.NotZero(t, logs.FilterMessage("request failed").Len(), "5xx are logged")
}

func TestAccessLogHasRequestIDAndNoQuery(t *testing.T) {
	app, logs := newApp(t)
	req := httptest.NewRequest("POST", "/echo?access_token=leaky", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("X-Request-ID", "abc-123")
	status, _, header := do(t, app, req)
	require.Equal(t, 200, status)
	require.Equal(t, "abc-123", header.Get("X-Request-ID"))
	lines := logs.FilterMessage("request").All()
	require.Len(t, lines, 1)
	fields := lines[0].ContextMap()
	require.Equal(t, "abc-123", fields["request_id"])
	require.Equal(t, "/echo", fields["path"])
	require.EqualValues(t, 200, fields["status"])
	for _, e := range logs.All() {
		for _, v := range e.ContextMap() {
			if s, ok := v.(string); ok {
				require.NotContains(t, s, "leaky")
			}
		}
	}

	// A hostile request id is replaced.
	req = httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-ID", "bad id\nwith newline")
	_, _, header = do(t, app, req)
	require.NotContains(t, header.Get("X-Request-ID"), " ")
}

func TestReadiness(t *testing.T) {
	app := httpserver.NewApp(config.HTTP{}, zap.NewNop())
	failing := false
	httpserver.RegisterHealth(app, []health.Check{{Name: "database", Run: func(context.Context) error {
		if failing {
			return errors.New("down")
		}
		return nil
	}}})
	status, _, _ := do(t, app, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, 200, status)
	failing = true
	status, body, _ := do(t, app, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, 503, status)
	require.Equal(t, "not_ready", body.Error.Code)
	status, _, _ = do(t, app, httptest.NewRequest("GET", "/healthz", nil))
	require.Equal(t, 200, status, "liveness does not depend on the database")
}

func TestLifecycle(t *testing.T) {
	var srv *httpserver.Server
	app := fxtest.New(t,
		fx.Supply(config.HTTP{Addr: "127.0.0.1:0"}, zap.NewNop()),
		httpserver.Module,
		fx.Provide(httpserver.AsRoute(func() httpserver.Route {
			return httpserver.RouteFunc(func(a *fiber.App) {
				a.Get("/hello", func(c *fiber.Ctx) error { return c.SendString("hi") })
			})
		})),
		fx.Populate(&srv),
	)
	app.RequireStart()
	resp, err := http.Get("http://" + srv.Addr() + "/hello")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "hi", string(b))
	app.RequireStop()
	_, err = http.Get("http://" + srv.Addr() + "/hello")
	require.Error(t, err, "stopped servers do not answer")
}

func TestFailedBindStopsStartUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	app := fx.New(
		fx.NopLogger,
		fx.Supply(config.HTTP{Addr: ln.Addr().String()}, zap.NewNop()),
		httpserver.Module,
	)
	err = app.Start(context.Background())
	require.ErrorContains(t, err, "cannot listen")
}

// TestBodyTooLarge runs on a real listener: fasthttp refuses the body
// before any handler runs, and the answer must still be our JSON.
func TestBodyTooLarge(t *testing.T) {
	app, _ := newApp(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = app.Listener(ln) }()
	defer app.Shutdown()
	resp, err := http.Post("http://"+ln.Addr().String()+"/echo", "application/json",
		strings.NewReader(`{"name":"`+strings.Repeat("a", 2000)+`"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 413, resp.StatusCode)
	var b errBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&b))
	require.Equal(t, "body_too_large", b.Error.Code)
}

// TestStopDoesNotWaitForUnusedConnections: a client's spare connection
// that never carried a request does not hold the stop.
func TestStopDoesNotWaitForUnusedConnections(t *testing.T) {
	var srv *httpserver.Server
	app := fxtest.New(t,
		fx.Supply(config.HTTP{Addr: "127.0.0.1:0", ShutdownTimeout: 30 * time.Second}, zap.NewNop()),
		httpserver.Module,
		fx.Populate(&srv),
	)
	app.RequireStart()
	idle, err := net.Dial("tcp", srv.Addr()) // connected, says nothing
	require.NoError(t, err)
	defer idle.Close()
	used, err := net.Dial("tcp", srv.Addr()) // one request, then keep-alive
	require.NoError(t, err)
	defer used.Close()
	_, err = used.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	buf := make([]byte, 512)
	_, err = used.Read(buf)
	require.NoError(t, err)

	start := time.Now()
	app.RequireStop()
	require.Less(t, time.Since(start), 3*time.Second, "stop closes connections that carry no request")
	_ = idle.SetReadDeadline(time.Now().Add(time.Second))
	_, err = idle.Read(buf)
	require.Error(t, err, "the unused connection was closed")
}

// TestStopLetsRequestsInFlightFinish: a slow request started before the
// stop gets its full answer.
func TestStopLetsRequestsInFlightFinish(t *testing.T) {
	var srv *httpserver.Server
	entered := make(chan struct{})
	app := fxtest.New(t,
		fx.Supply(config.HTTP{Addr: "127.0.0.1:0"}, zap.NewNop()),
		httpserver.Module,
		fx.Provide(httpserver.AsRoute(func() httpserver.Route {
			return httpserver.RouteFunc(func(a *fiber.App) {
				a.Get("/slow", func(c *fiber.Ctx) error {
					close(entered)
					time.Sleep(300 * time.Millisecond) // the work a stop must wait for
					return c.SendString("finished")
				})
			})
		})),
		fx.Populate(&srv),
	)
	app.RequireStart()
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + srv.Addr() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	app.RequireStop()
	r := <-got
	require.NoError(t, r.err)
	require.Equal(t, "finished", r.body)
}
