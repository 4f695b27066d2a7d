// Package avatar takes the profile picture a mini program uploads after
// <button open-type="chooseAvatar"> (wx.uploadFile, multipart field
// "file"), checks it is a JPEG, PNG or WebP of bounded size, stores it under
// a random name and serves it back at the URL it returns.
//
// Routes: POST /api/v1/me/avatar (bearer) and GET /avatars/:name.
//
// Every stored file has an owner (an avatar_uploads row, written before the
// file): a user may point their avatar at a file stored here only if they
// uploaded it (PATCH /api/v1/me, see [Handlers.CheckAvatarURL]); replacing
// an avatar deletes the old file only if the user owned it; a merge moves
// the absorbed user's files to the survivor. Concurrent changes of one
// user's avatar take turns under the user row's lock, so each replaced file
// is deleted exactly once and only the last upload stays ([RemoveReplaced]).
// A [Sweeper] deletes what a crash or a failed request left behind: files
// older than [SweepGrace] that their owner does not point at. Uploads are
// limited per user (ratelimit.Limits.AvatarUploads).
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
	"net/url"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/avatarupload"
	"github.com/wxlogin/wxlogin/ent/hook"
	entuser "github.com/wxlogin/wxlogin/ent/user"
	"github.com/wxlogin/wxlogin/modules/auth"
	"github.com/wxlogin/wxlogin/modules/httpserver"
	"github.com/wxlogin/wxlogin/modules/ratelimit"
	"github.com/wxlogin/wxlogin/modules/user"
)

// Module provides the local-directory Storage, registers the routes,
// judges the avatar URLs of PATCH /api/v1/me (auth.AvatarPolicy), moves
// uploads along a merge, swaps and deletes replaced files
// ([RemoveReplaced]) and runs the [Sweeper].
var Module = fx.Module("avatar",
	fx.Provide(
		func(cfg config.Avatar) (Storage, error) { return NewDir(cfg.Dir) },
		NewHandlers,
		httpserver.AsRoute(func(h *Handlers) *Handlers { return h }),
		func(h *Handlers) auth.AvatarPolicy { return h },
		user.AsMergeHook(MoveUploads),
		NewSweeperFx,
	),
	fx.Invoke(func(client *ent.Client, h *Handlers) { RemoveReplaced(client, h) }),
	fx.Invoke(func(*Sweeper) {}),
)

// MoveUploads is the merge hook: the absorbed user's files become the
// survivor's, who may keep or replace them.
func MoveUploads(ctx context.Context, tx *ent.Tx, from, into int) error {
	return tx.AvatarUpload.Update().Where(avatarupload.UserID(from)).SetUserID(into).Exec(ctx)
}

// RemoveReplaced makes every change of a user's avatar_url, whoever makes
// it (an upload, PATCH /api/v1/me, decrypted user info, your own code),
// delete the stored file the old URL pointed at when the user owned it. It
// is an ent hook on the shared client. Inside a transaction (user.Store
// changes profiles in one) it reads the old URL under the user row's lock,
// so concurrent changes take turns and each replaced file is deleted once,
// after the commit; outside one, a change racing another may leave a file
// behind for the [Sweeper].
func RemoveReplaced(client *ent.Client, h *Handlers) {
	client.User.Use(func(next ent.Mutator) ent.Mutator {
		return hook.UserFunc(func(ctx context.Context, m *ent.UserMutation) (ent.Value, error) {
			newURL, set := m.AvatarURL()
			id, hasID := m.ID()
			if !set || !hasID || !m.Op().Is(ent.OpUpdateOne) {
				return next.Mutate(ctx, m)
			}
			tx, txErr := m.Tx()
			var old string
			var err error
			if txErr == nil {
				old, err = lockedAvatar(ctx, m.Client(), id)
			} else {
				old, err = m.OldAvatarURL(ctx)
			}
			if err != nil && !ent.IsNotFound(err) {
				return nil, err
			}
			v, err := next.Mutate(ctx, m)
			if err != nil || old == "" || old == newURL {
				return v, err
			}
			if tx == nil {
				h.release(context.WithoutCancel(ctx), id, old)
				return v, nil
			}
			tx.OnCommit(func(next ent.Committer) ent.Committer {
				return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
					if err := next.Commit(ctx, tx); err != nil {
						return err
					}
					h.release(context.WithoutCancel(ctx), id, old)
					return nil
				})
			})
			return v, nil
		})
	})
}

// lockedAvatar reads the user's avatar URL and locks the row until the
// transaction ends. SQLite needs no lock: the project's SQLite has a single
// connection.
func lockedAvatar(ctx context.Context, c *ent.Client, id int) (string, error) {
	return c.User.Query().Where(entuser.ID(id), func(s *entsql.Selector) {
		if s.Dialect() != dialect.SQLite {
			s.ForUpdate()
		}
	}).Select(entuser.FieldAvatarURL).String(ctx)
}

// Params are NewHandlers' dependencies.
type Params struct {
	fx.In
	Config  config.Avatar
	HTTP    config.HTTP
	Storage Storage
	Client  *ent.Client
	Users   user.Store
	Guard   *auth.Guard
	Logger  *zap.Logger
	// Limits limit the uploads per user; optional.
	Limits *ratelimit.Limits `optional:"true"`
}

// Handlers serve avatar upload and download.
type Handlers struct {
	storage  Storage
	client   *ent.Client
	users    user.Store
	guard    *auth.Guard
	logger   *zap.Logger
	limit    ratelimit.Limiter
	maxBytes int64
	prefix   string   // public URL prefix of stored avatars, ending in "/"
	public   *url.URL // the public URL, to recognise our own host
}

var _ auth.AvatarPolicy = (*Handlers)(nil)

// NewHandlers returns the avatar handlers.
func NewHandlers(p Params) *Handlers {
	h := &Handlers{
		storage:  p.Storage,
		client:   p.Client,
		users:    p.Users,
		guard:    p.Guard,
		logger:   p.Logger.Named("avatar"),
		maxBytes: p.Config.MaxBytes,
		prefix:   strings.TrimRight(p.HTTP.PublicURL, "/") + "/avatars/",
	}
	h.public, _ = url.Parse(strings.TrimRight(p.HTTP.PublicURL, "/"))
	if h.public == nil {
		h.public = &url.URL{}
	}
	if p.Limits != nil {
		h.limit = p.Limits.AvatarUploads
	}
	return h
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
	perUser := ratelimit.New(ratelimit.Config{
		Limiter: h.limit,
		Key:     func(c *fiber.Ctx) string { p, _ := auth.PrincipalOf(c); return strconv.Itoa(p.UserID) },
		Message: "too many avatar uploads; retry later",
	})
	app.Post("/api/v1/me/avatar", h.guard.Handler(), perUser, h.Upload)
	app.Get("/avatars/:name", h.Serve)
}

// types maps the sniffed content types we accept to file extensions.
var types = map[string]string{"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}

// storageDown is the answer when the storage does not answer.
func storageDown(err error) error {
	return httpserver.Unavailable("the avatar storage does not answer; retry shortly", err)
}

// Upload stores the "file" part and points the caller's avatar_url at it.
// The owner is recorded before the file is written, and both go again if
// the user cannot be pointed at it: nothing is left half-done.
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
	if err := h.client.AvatarUpload.Create().SetName(name).SetUserID(p.UserID).SetCreatedAt(time.Now().UTC()).Exec(ctx); err != nil {
		return httpserver.Unavailable("the database does not answer; retry shortly", err)
	}
	if err := h.storage.Save(ctx, name, bytes.NewReader(data)); err != nil {
		h.discard(context.WithoutCancel(ctx), name)
		return storageDown(err)
	}
	url := h.prefix + name
	u, err := h.users.UpdateProfile(ctx, p.UserID, user.ProfileUpdate{AvatarURL: &url})
	if err != nil {
		h.discard(context.WithoutCancel(ctx), name)
		return err
	}
	// The previous file, if it was the user's, is gone: see RemoveReplaced.
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

// CheckAvatarURL is the auth.AvatarPolicy: a URL of this service's own
// avatar storage is accepted only when it names a file the user uploaded
// and that is still stored (else 400 invalid_avatar_url); a URL of another
// host is the user's business.
func (h *Handlers) CheckAvatarURL(ctx context.Context, userID int, raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Hostname(), h.public.Hostname()) {
		return nil // not ours (or not a URL, which the profile validation refuses)
	}
	// Our own host: nothing but the canonical URL of an upload of the
	// caller's, whatever the path, case, escaping or port says.
	refuse := &user.ValidationError{Field: "avatar_url", Reason: "an avatar stored by this service must be one you uploaded (POST /api/v1/me/avatar)"}
	name, ok := h.ownName(raw)
	if !ok {
		return refuse
	}
	n, err := h.client.AvatarUpload.Query().Where(avatarupload.Name(name), avatarupload.UserID(userID)).Count(ctx)
	if err != nil {
		return httpserver.Unavailable("the database does not answer; retry shortly", err)
	}
	if n == 0 {
		return refuse
	}
	return nil
}

// release deletes the file of an avatar URL a user no longer points at,
// if it is stored here and was theirs. A file from before owners were
// recorded is deleted when nobody points at it any more.
func (h *Handlers) release(ctx context.Context, userID int, old string) {
	name, ok := h.ownName(old)
	if !ok {
		return
	}
	row, err := h.client.AvatarUpload.Query().Where(avatarupload.Name(name)).Only(ctx)
	switch {
	case err == nil && row.UserID != userID:
		return // someone else's: never ours to delete
	case err == nil:
		// Still theirs (pointed at again meanwhile)? Then it stays.
		n, err := h.client.User.Query().Where(entuser.ID(userID), entuser.AvatarURLHasSuffix("/avatars/"+name)).Count(ctx)
		if err != nil || n > 0 {
			return
		}
	case ent.IsNotFound(err):
		n, err := h.client.User.Query().Where(entuser.AvatarURL(old)).Count(ctx)
		if err != nil || n > 0 {
			return
		}
	default:
		h.logger.Warn("replaced avatar not removed now; the sweeper will", zap.String("name", name), zap.Error(err))
		return
	}
	h.discard(ctx, name)
}

// discard deletes a stored file, then its owner row (a failure leaves the
// row, so the sweeper tries again).
func (h *Handlers) discard(ctx context.Context, name string) {
	if err := h.storage.Delete(ctx, name); err != nil {
		h.logger.Warn("avatar file not removed now; the sweeper will", zap.String("name", name), zap.Error(err))
		return
	}
	if _, err := h.client.AvatarUpload.Delete().Where(avatarupload.Name(name)).Exec(ctx); err != nil {
		h.logger.Warn("avatar owner row not removed", zap.String("name", name), zap.Error(err))
	}
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
		return storageDown(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, h.maxBytes+1))
	if err != nil {
		return storageDown(err)
	}
	for ct, ext := range types {
		if strings.HasSuffix(name, "."+ext) {
			c.Set(fiber.HeaderContentType, ct)
		}
	}
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
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
