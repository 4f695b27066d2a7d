package auth

import (
	"crypto/sha256"
	_ "embed" // the mini-program client
	"encoding/base64"

	"github.com/gofiber/fiber/v2"
)

// ClientJS is the mini-program client, modules/auth/sdk/wxlogin.js: a
// CommonJS module without dependencies that logs in with wx.login, keeps
// and refreshes the tokens and calls this API (see the README, "A client
// for the mini program"). The service serves it at GET /sdk/wxlogin.js.
//
//go:embed sdk/wxlogin.js
var ClientJS []byte

// ClientTypes is the client's TypeScript declarations, served at
// GET /sdk/wxlogin.d.ts.
//
//go:embed sdk/wxlogin.d.ts
var ClientTypes []byte

// SDK serves the client for download, so a mini program's developer fetches
// the copy that matches the service they call.
type SDK struct {
	js, types sdkFile
}

type sdkFile struct {
	body        []byte
	contentType string
	etag        string
}

func newSDKFile(body []byte, contentType string) sdkFile {
	sum := sha256.Sum256(body)
	return sdkFile{body: body, contentType: contentType, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
}

// NewSDK returns the route serving [ClientJS] and [ClientTypes].
func NewSDK() *SDK {
	return &SDK{
		js:    newSDKFile(ClientJS, "application/javascript; charset=utf-8"),
		types: newSDKFile(ClientTypes, "text/plain; charset=utf-8"),
	}
}

// Register adds GET /sdk/wxlogin.js and GET /sdk/wxlogin.d.ts.
func (s *SDK) Register(app *fiber.App) {
	app.Get("/sdk/wxlogin.js", s.js.serve)
	app.Get("/sdk/wxlogin.d.ts", s.types.serve)
}

// serve answers with the file; briefly cacheable, revalidated by ETag so a
// new release of the service is picked up within minutes.
func (f sdkFile) serve(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, f.contentType)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set(fiber.HeaderETag, f.etag)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if c.Fresh() {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	return c.Send(f.body)
}
