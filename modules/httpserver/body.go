package httpserver

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// BodyLimit is a route that takes bodies larger than config.HTTP.BodyLimit
// (an upload). Its handler reads the body itself, within Bytes: for
// multipart forms with c.Request().MultipartFormWithLimit (see
// modules/avatar), never with c.Body() or c.FormFile, which do not bound a
// chunked body.
type BodyLimit struct {
	// Method and Path name the route exactly as registered (no parameters).
	Method, Path string
	// Bytes is the largest body the route accepts.
	Bytes int64
}

// LargeBodies is implemented by a [Route] some of whose routes take larger
// bodies than the default limit; [New] collects them.
type LargeBodies interface {
	BodyLimits() []BodyLimit
}

// bodyLimits enforces the body limit of every route: before the body is
// read when the client announced its length, and while reading it when it
// comes chunked.
type bodyLimits struct {
	def    int64
	routes map[string]int64 // "METHOD /path" → limit
}

func newBodyLimits(def int, routes []BodyLimit) *bodyLimits {
	b := &bodyLimits{def: int64(def), routes: map[string]int64{}}
	if b.def <= 0 {
		b.def = DefaultBodyLimit
	}
	for _, r := range routes {
		b.routes[routeKey(r.Method, r.Path)] = r.Bytes
	}
	return b
}

func routeKey(method, path string) string {
	return strings.ToUpper(method) + " " + strings.ToLower(strings.TrimRight(path, "/"))
}

// max is the largest limit of any route: what fasthttp is told.
func (b *bodyLimits) max() int {
	m := b.def
	for _, n := range b.routes {
		m = max(m, n)
	}
	return int(m)
}

// bufPool holds the buffers bodies are read into before fasthttp copies
// them into its own.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// handler reads the body of a route without a limit of its own, at most
// the default limit, and decompresses it within that limit, so that
// handlers (and c.Body()) see a plain body that is never larger.
func (b *bodyLimits) handler(c *fiber.Ctx) error {
	req := c.Request()
	if !req.IsBodyStream() {
		return c.Next()
	}
	limit, declared := b.routes[routeKey(c.Method(), c.Path())]
	if !declared {
		limit = b.def
	}
	if n := req.Header.ContentLength(); n > 0 && int64(n) > limit {
		return bodyTooLarge(limit)
	}
	if declared {
		return c.Next() // the route reads its own body, within limit
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= int(DefaultBodyLimit)*2 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(req.BodyStream(), limit+1))
	if err != nil {
		// The client stopped sending or the read timed out: nobody is
		// left to answer, the connection is closed.
		return NewError(fiber.StatusBadRequest, "bad_request", "the request body could not be read")
	}
	if n > limit {
		return bodyTooLarge(limit)
	}
	req.SetBody(buf.Bytes())
	if err := decompress(req, limit); err != nil {
		return err
	}
	return c.Next()
}

// decompress replaces a compressed body by its content, at most limit
// bytes of it: Fiber would otherwise inflate it without a bound.
func decompress(req *fasthttp.Request, limit int64) error {
	enc := strings.ToLower(strings.TrimSpace(string(req.Header.ContentEncoding())))
	switch enc {
	case "", "identity":
		req.Header.Del(fiber.HeaderContentEncoding)
		return nil
	case "gzip", "deflate", "br", "zstd":
	default:
		return NewError(fiber.StatusUnsupportedMediaType, "unsupported_media_type",
			"the body's Content-Encoding is not supported (send it uncompressed, or as gzip, deflate, br or zstd)")
	}
	plain, err := req.BodyUncompressedWithLimit(int(limit))
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return bodyTooLarge(limit)
	}
	if err != nil {
		return NewError(fiber.StatusBadRequest, "bad_request", "the body does not decompress as its Content-Encoding says")
	}
	plain = bytes.Clone(plain) // it may share the buffer SetBody replaces
	req.Header.Del(fiber.HeaderContentEncoding)
	req.SetBody(plain)
	return nil
}

func bodyTooLarge(limit int64) *Error {
	return NewError(fiber.StatusRequestEntityTooLarge, "body_too_large",
		"the request body is too large: at most "+strconv.FormatInt(limit, 10)+" bytes")
}
