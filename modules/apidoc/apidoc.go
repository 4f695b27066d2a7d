// Package apidoc serves the OpenAPI 3.1 document of the public HTTP API,
// modules/apidoc/openapi.json, at GET /openapi.json.
//
// The document is written by hand and kept honest by tests: every route
// the real application registers must be in it (app/openapi_test.go names
// the missing one), and the end-to-end tests validate every request they
// send and every answer they get against it (pb33f/libopenapi-validator).
// A module that adds a public route adds its path to the document: the
// request body, every answer with its error codes (the "allOf Error + enum"
// pattern of the existing routes) and the bearer scheme when the route is
// guarded. Routes of the operator listener (/metrics, /debug/pprof/) are
// not part of the public API and not in it.
//
// Nothing in the package needs replacing: leave the module out to stop
// serving the document.
package apidoc

import (
	"crypto/sha256"
	_ "embed" // the document
	"encoding/base64"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// Document is the OpenAPI 3.1 document (JSON).
//
//go:embed openapi.json
var Document []byte

// Module serves the document.
var Module = fx.Module("apidoc",
	fx.Provide(httpserver.AsRoute(func() httpserver.Route { return httpserver.RouteFunc(Register) })),
)

var etag = func() string {
	sum := sha256.Sum256(Document)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}()

// Register adds GET /openapi.json.
func Register(app *fiber.App) {
	app.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		c.Set(fiber.HeaderETag, etag)
		if c.Fresh() {
			return c.SendStatus(fiber.StatusNotModified)
		}
		return c.Send(Document)
	})
}
