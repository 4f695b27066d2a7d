package apidoc_test

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/modules/apidoc"
)

func TestServesTheDocument(t *testing.T) {
	app := fiber.New()
	apidoc.Register(app)
	resp, err := app.Test(httptest.NewRequest("GET", "/openapi.json", nil), -1)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])

	req := httptest.NewRequest("GET", "/openapi.json", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = app.Test(req, -1)
	require.NoError(t, err)
	require.Equal(t, 304, resp.StatusCode)
}
