package httpserver_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// serve runs app on a real listener (fasthttp's own parsing is part of
// what is tested) and returns its address.
func serve(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return ln.Addr().String()
}

// raw sends a request as bytes and returns the raw answer.
func raw(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Write([]byte(request))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	require.NoError(t, resp.Header.Write(&b))
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d\n%s\n%s", resp.StatusCode, b.String(), body)
}

// TestParseErrorsDoNotEchoTheRequest: a request fasthttp cannot parse is
// answered with a fixed message, never with the request (and its
// Authorization header) quoted back.
func TestParseErrorsDoNotEchoTheRequest(t *testing.T) {
	app, logs := newApp(t)
	addr := serve(t, app)
	for _, req := range []string{
		"GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer super-secret-token\r\nthis line has no colon\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer super-secret-token\r\nContent-Length: nope\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer super-secret-token\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	} {
		got := raw(t, addr, req)
		require.True(t, strings.HasPrefix(got, "400\n"), got)
		require.NotContains(t, got, "super-secret-token")
		require.NotContains(t, got, "Authorization")
		require.Contains(t, got, `"code":"bad_request"`)
		require.Contains(t, got, "X-Content-Type-Options: nosniff")
	}
	for _, e := range logs.All() {
		require.NotContains(t, fmt.Sprint(e.Message, e.ContextMap()), "super-secret-token")
	}
}

// TestSecurityHeaders: every answer says nosniff and, unless the handler
// allows caching, no-store.
func TestSecurityHeaders(t *testing.T) {
	app, _ := newApp(t)
	app.Get("/cacheable", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "public, max-age=60")
		return c.SendString("ok")
	})
	for _, c := range []struct{ path, cache string }{
		{"/nope", "no-store"}, {"/fail", "no-store"}, {"/validation", "no-store"}, {"/cacheable", "public, max-age=60"},
	} {
		resp, err := app.Test(httptestRequest("GET", c.path, nil), -1)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), c.path)
		require.Equal(t, c.cache, resp.Header.Get("Cache-Control"), c.path)
	}
}

func httptestRequest(method, path string, body io.Reader) *http.Request {
	req, _ := http.NewRequest(method, "http://example.com"+path, body)
	return req
}

// TestBodyLimits: the default limit holds for announced, chunked and
// compressed bodies; a route declared larger takes its own.
func TestBodyLimits(t *testing.T) {
	app := httpserver.NewApp(config.HTTP{BodyLimit: 2048}, zap.NewNop(),
		httpserver.BodyLimit{Method: "POST", Path: "/upload", Bytes: 8192})
	app.Post("/echo", func(c *fiber.Ctx) error {
		var v map[string]any
		if err := httpserver.DecodeJSON(c, &v); err != nil {
			return err
		}
		return c.JSON(v)
	})
	app.Post("/upload", func(c *fiber.Ctx) error {
		form, err := c.Request().MultipartFormWithLimit(8192)
		if err != nil {
			return httpserver.NewError(413, "too_large", "too large")
		}
		return c.JSON(fiber.Map{"files": len(form.File["file"])})
	})
	addr := serve(t, app)
	small := `{"name":"` + strings.Repeat("a", 500) + `"}`
	large := `{"name":"` + strings.Repeat("a", 2100) + `"}`

	post := func(path, contentType, encoding string, body io.Reader, length int64) (int, string) {
		req, err := http.NewRequest("POST", "http://"+addr+path, body)
		require.NoError(t, err)
		req.ContentLength = length // -1: chunked
		req.Header.Set("Content-Type", contentType)
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct {
			Error httpserver.Body `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Error.Code
	}
	status, _ := post("/echo", "application/json", "", strings.NewReader(small), int64(len(small)))
	require.Equal(t, 200, status)
	status, code := post("/echo", "application/json", "", strings.NewReader(large), int64(len(large)))
	require.Equal(t, 413, status)
	require.Equal(t, "body_too_large", code)
	status, code = post("/echo", "application/json", "", io.MultiReader(strings.NewReader(large)), -1)
	require.Equal(t, 413, status, "a chunked body is cut at the limit")
	require.Equal(t, "body_too_large", code)
	status, _ = post("/echo", "application/json", "", io.MultiReader(strings.NewReader(small)), -1)
	require.Equal(t, 200, status)

	// A gzip bomb: 1 MiB of JSON in a few KiB of gzip.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"name":"` + strings.Repeat("a", 1<<20) + `"}`))
	require.NoError(t, zw.Close())
	require.Less(t, gz.Len(), 2048)
	status, code = post("/echo", "application/json", "gzip", bytes.NewReader(gz.Bytes()), int64(gz.Len()))
	require.Equal(t, 413, status, "decompression stops at the limit")
	require.Equal(t, "body_too_large", code)
	gz.Reset()
	zw = gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(small))
	require.NoError(t, zw.Close())
	status, _ = post("/echo", "application/json", "gzip", bytes.NewReader(gz.Bytes()), int64(gz.Len()))
	require.Equal(t, 200, status, "a small compressed body is read")
	status, code = post("/echo", "application/json", "compress", strings.NewReader(small), int64(len(small)))
	require.Equal(t, 415, status)
	require.Equal(t, "unsupported_media_type", code)

	// The declared route: up to its own limit, and no further.
	form := func(size int) (*bytes.Buffer, string) {
		var b bytes.Buffer
		b.WriteString("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n")
		b.Write(bytes.Repeat([]byte{'x'}, size))
		b.WriteString("\r\n--XyZ--\r\n")
		return &b, "multipart/form-data; boundary=XyZ"
	}
	b, ct := form(6000)
	status, _ = post("/upload", ct, "", b, int64(b.Len()))
	require.Equal(t, 200, status, "above the default, within the route's limit")
	b, ct = form(10000)
	status, code = post("/upload", ct, "", b, int64(b.Len()))
	require.Equal(t, 413, status)
	require.Equal(t, "body_too_large", code, "refused before it is read")
	b, ct = form(10000)
	status, code = post("/upload", ct, "", io.MultiReader(b), -1)
	require.Equal(t, 413, status, "a chunked upload stops at the route's limit")
	require.Equal(t, "too_large", code)
	b, ct = form(3000)
	status, code = post("/echo", ct, "", b, int64(b.Len()))
	require.Equal(t, 413, status, "other routes keep the default limit")
	require.Equal(t, "body_too_large", code)
}

// TestClientIP: the peer's address, or behind trusted proxies the
// rightmost address they did not write themselves.
func TestClientIP(t *testing.T) {
	cases := []struct {
		name, trusted string
		xff           []string
		want          string
	}{
		{"no proxies trusted: the header is ignored", "", []string{"1.2.3.4"}, "127.0.0.1"},
		{"one proxy", "127.0.0.1", []string{"1.2.3.4"}, "1.2.3.4"},
		{"a spoofed entry left of the real one", "127.0.0.0/8", []string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{"a chain of trusted proxies", "127.0.0.0/8,10.0.0.0/8", []string{"1.2.3.4, 10.0.0.7", "10.1.1.1"}, "1.2.3.4"},
		{"IPv6", "127.0.0.1", []string{"2001:db8::1"}, "2001:db8::1"},
		{"no header from a trusted proxy", "127.0.0.1", nil, "127.0.0.1"},
		{"entries with ports", "127.0.0.1", []string{"6.6.6.6, 1.2.3.4:5678"}, "1.2.3.4"},
		{"garbage stops the walk", "127.0.0.1", []string{"1.2.3.4, not-an-address"}, "127.0.0.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			app := httpserver.NewApp(config.HTTP{TrustedProxies: c.trusted}, zap.NewNop())
			app.Get("/ip", func(ctx *fiber.Ctx) error { return ctx.SendString(httpserver.ClientIP(ctx)) })
			addr := serve(t, app)
			req, _ := http.NewRequest("GET", "http://"+addr+"/ip", nil)
			for _, v := range c.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			require.Equal(t, c.want, string(b))
		})
	}
}
