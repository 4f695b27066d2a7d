package auth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

func TestSDKServesTheEmbeddedClient(t *testing.T) {
	onDisk, err := os.ReadFile("sdk/wxlogin.js")
	require.NoError(t, err)
	require.Equal(t, string(onDisk), string(auth.ClientJS), "the embedded client is the repository's file")
	types, err := os.ReadFile("sdk/wxlogin.d.ts")
	require.NoError(t, err)
	require.Equal(t, string(types), string(auth.ClientTypes))

	app := httpserver.NewApp(config.HTTP{}, zap.NewNop())
	auth.NewSDK().Register(app)
	get := func(method, path string, header map[string]string) (*http.Response, []byte) {
		req := httptest.NewRequest(method, path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := app.Test(req, -1)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, body
	}

	resp, body := get(http.MethodGet, "/sdk/wxlogin.js", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, string(onDisk), string(body), "exactly the file")
	require.Equal(t, "application/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "public, max-age=300", resp.Header.Get("Cache-Control"))
	etag := resp.Header.Get("ETag")
	require.Regexp(t, `^"[A-Za-z0-9_-]{22}"$`, etag)

	// A cached copy is revalidated without the body.
	resp, body = get(http.MethodGet, "/sdk/wxlogin.js", map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusNotModified, resp.StatusCode)
	require.Empty(t, body)
	require.Equal(t, etag, resp.Header.Get("ETag"))
	resp, body = get(http.MethodGet, "/sdk/wxlogin.js", map[string]string{"If-None-Match": `"an-older-release"`})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, string(onDisk), string(body))

	resp, body = get(http.MethodHead, "/sdk/wxlogin.js", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, body)

	resp, body = get(http.MethodGet, "/sdk/wxlogin.d.ts", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, string(types), string(body))
	require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	require.NotEqual(t, etag, resp.Header.Get("ETag"))
}
