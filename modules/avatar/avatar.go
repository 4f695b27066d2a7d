// Package avatar takes the profile picture a mini program uploads after
// <button open-type="chooseAvatar"> (wx.uploadFile, multipart field
// "file"), checks it is a JPEG, PNG or WebP of bounded size, stores it under
// a random name and serves it back at the URL it returns.
//
// Routes: POST /api/v1/me/avatar (bearer) and GET /avatars/:name.
//
// Module provides [Storage] as a local directory (APP_AVATAR_DIR). An
// application that keeps files elsewhere (object storage, a CDN origin)
// replaces it with fx.Decorate(func(Storage) Storage { return myStorage }).
package avatar

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/hook"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Module provides the local-directory Storage, registers the routes and
// removes a stored avatar once no user points at it (see [RemoveReplaced]).
var Module = fx.Module("avatar",
	fx.Provide(
		func(cfg config.Avatar) (Storage, error) { return NewDir(cfg.Dir) },
		NewHandlers,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
	),
	fx.Invoke(func(client *ent.Client, h *Handlers) { RemoveReplaced(client, h) }),
)

// RemoveReplaced makes every change of a user's avatar_url, whoever makes
// it (an upload, PATCH /api/v1/me, decrypted user info, your own code),
// delete the stored file the old URL pointed at. It is an ent hook on the
// shared client, so no path can leave an orphaned file behind.
func RemoveReplaced(client *ent.Client, h *Handlers) {
	client.User.Use(func(next ent.Mutator) ent.Mutator {
		return hook.UserFunc(func(ctx context.Context, m *ent.UserMutation) (ent.Value, error) {
			newURL, set := m.AvatarURL()
			if !set || !m.Op().Is(ent.OpUpdateOne) {
				return next.Mutate(ctx, m)
			}
			oldURL, oldErr := m.OldAvatarURL(ctx)
			v, err := next.Mutate(ctx, m)
			if err != nil || oldErr != nil || oldURL == newURL {
				return v, err
			}
			if name, ok := h.ownName(oldURL); ok {
				if derr := h.storage.Delete(context.WithoutCancel(ctx), name); derr != nil {
					h.logger.Warn("replaced avatar not removed", zap.String("name", name), zap.Error(derr))
				}
			}
			return v, nil
		})
	})
}

// Params are NewHandlers' dependencies.
type Params struct {
	fx.In
	Config  config.Avatar
	HTTP    config.HTTP
	Storage Storage
	Users   user.Store
	Guard   *auth.Guard
	Logger  *zap.Logger
}

// Handlers serve avatar upload and download.
type Handlers struct {
	storage  Storage
	users    user.Store
	guard    *auth.Guard
	logger   *zap.Logger
	maxBytes int64
	prefix   string // public URL prefix of stored avatars, ending in "/"
}

// NewHandlers returns the avatar handlers.
func NewHandlers(p Params) *Handlers {
	return &Handlers{
		storage:  p.Storage,
		users:    p.Users,
		guard:    p.Guard,
		logger:   p.Logger.Named("avatar"),
		maxBytes: p.Config.MaxBytes,
		prefix:   strings.TrimRight(p.HTTP.PublicURL, "/") + "/avatars/",
	}
}

// envelope is what a multipart upload may carry besides the image.
const envelope = 64 << 10

// BodyLimits gives the upload route a body limit of its own: the image
// and its multipart envelope.
func (h *Handlers) BodyLimits() []httpserver.BodyLimit {
	return []httpserver.BodyLimit{{Method: fiber.MethodPost, Path: "/api/v1/me/avatar", Bytes: h.maxBytes + envelope}}
}

// Register adds POST /api/v1/me/avatar and GET /avatars/:name.
func (h *Handlers) Register(app *fiber.App) {
	app.Post("/api/v1/me/avatar", h.guard.Handler(), h.Upload)
	app.Get("/avatars/:name", h.Serve)
}

// types maps the sniffed content types we accept to file extensions.
var types = map[string]string{"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}

// Upload stores the "file" part and points the caller's avatar_url at it.
func (h *Handlers) Upload(c *fiber.Ctx) error {
	p, _ := auth.PrincipalOf(c)
	fh, err := h.formFile(c)
	if err != nil {
		return err
	}
	if fh.Size > h.maxBytes {
		return tooLarge(h.maxBytes)
	}
	data, err := readPart(fh, h.maxBytes)
	if err != nil {
		return err
	}
	ext, ok := types[http.DetectContentType(data)]
	if !ok {
		return httpserver.NewError(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "the avatar must be a JPEG, PNG or WebP image")
	}
	name, err := randomName(ext)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := h.storage.Save(ctx, name, bytes.NewReader(data)); err != nil {
		return err
	}
	url := h.prefix + name
	u, err := h.users.UpdateProfile(ctx, p.UserID, user.ProfileUpdate{AvatarURL: &url})
	if err != nil {
		// Nothing half-written: the file goes if the user does not point at it.
		_ = h.storage.Delete(context.WithoutCancel(ctx), name)
		return err
	}
	// The previous file, if it was ours, is gone: see RemoveReplaced.
	return c.JSON(user.View(u, auth.IdentityOf(p)))
}

// formFile reads the multipart form within the route's limit (a chunked
// body included) and returns its "file" part.
func (h *Handlers) formFile(c *fiber.Ctx) (*multipart.FileHeader, error) {
	missing := httpserver.BadRequest("missing_file", `send the image as multipart/form-data in the field "file" (wx.uploadFile with name: "file")`)
	form, err := c.Request().MultipartFormWithLimit(int(h.maxBytes + envelope))
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return nil, tooLarge(h.maxBytes)
	}
	if err != nil {
		return nil, missing
	}
	files := form.File["file"]
	if len(files) == 0 {
		return nil, missing
	}
	return files[0], nil
}

// Serve returns a stored avatar.
func (h *Handlers) Serve(c *fiber.Ctx) error {
	name := c.Params("name")
	if !validName(name) {
		return fiber.ErrNotFound
	}
	rc, err := h.storage.Open(c.UserContext(), name)
	if errors.Is(err, ErrNotFound) {
		return fiber.ErrNotFound
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	for ct, ext := range types {
		if strings.HasSuffix(name, "."+ext) {
			c.Set(fiber.HeaderContentType, ct)
		}
	}
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	return c.Send(data)
}

// ownName returns the storage name of an avatar URL this server handed out.
func (h *Handlers) ownName(url string) (string, bool) {
	name, ok := strings.CutPrefix(url, h.prefix)
	return name, ok && validName(name)
}

func readPart(fh *multipart.FileHeader, max int64) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, httpserver.BadRequest("missing_file", "the uploaded file cannot be read")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, httpserver.BadRequest("missing_file", "the uploaded file cannot be read")
	}
	if int64(len(data)) > max {
		return nil, tooLarge(max)
	}
	if len(data) == 0 {
		return nil, httpserver.BadRequest("empty_file", "the uploaded file is empty")
	}
	return data, nil
}

func tooLarge(max int64) error {
	return httpserver.NewError(fiber.StatusRequestEntityTooLarge, "avatar_too_large",
		"the avatar must be at most "+strconv.FormatInt(max, 10)+" bytes")
}

func randomName(ext string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("avatar: random name: %w", err)
	}
	return hex.EncodeToString(b[:]) + "." + ext, nil
}

// validName reports whether name is one this package generates:
// 32 lowercase hex digits and a known extension. Nothing else reaches storage.
func validName(name string) bool {
	base, ext, ok := strings.Cut(name, ".")
	if !ok || len(base) != 32 {
		return false
	}
	if ext != "jpg" && ext != "png" && ext != "webp" {
		return false
	}
	for i := 0; i < len(base); i++ {
		if !(base[i] >= '0' && base[i] <= '9' || base[i] >= 'a' && base[i] <= 'f') {
			return false
		}
	}
	return true
}
