// Package user keeps people and their identities in the database through
// ent. A user is a person (profile, phone, status); an identity is one
// account of theirs on one app (provider, appid, openid, optional unionid,
// its own server-side session_key and last login). A user has one or more
// identities.
//
// Login through an app finds the identity by (provider, appid, openid) and
// so its user; else, when the platform gave a unionid that already belongs
// to a user, attaches a new identity to that user; else creates the user
// and the identity. All of it is atomic: concurrent first logins of one
// person through two apps make exactly one user (UnionLink's unique key).
//
// An identity may learn its unionid late (the app was bound to the Open
// Platform later, or the unionid first arrives in decrypted user info). If
// that unionid already belongs to another user, the two are one person and
// are merged in one transaction: the older user survives, the other's
// identities move over, profile fields fill only where the survivor's are
// empty, the merge hooks of business modules run in the same transaction
// (a failing hook aborts everything: [ErrMergeAborted]), and the listeners
// hear [Merged] after the commit. config.Identity.Merge "off" records the
// unionid on the identity instead, with a warning.
//
// # Lifecycle
//
// A user is active, banned ([EntStore.Ban]: logins refused with a
// *[BannedError] until the ban's end, when it lapses by itself), deleted
// ([EntStore.Delete]: personal data erased in one transaction with the
// delete hooks, a tombstone left) or merged. Listeners hear every change
// after its commit ([Banned], [Unbanned], [Deleted], [ProfileCleared],
// [IdentityRemoved]); modules/auth ends the sessions that must end.
//
// # Replacing parts with fx
//
// [Module] provides [Store] (an *[EntStore]). An application may
//   - join the merge with its own rows: fx.Provide(user.AsMergeHook(func(ctx context.Context, tx *ent.Tx, from, into int) error {…}));
//   - erase its own rows when a user is deleted: fx.Provide(user.AsDeleteHook(func(ctx context.Context, tx *ent.Tx, userID int) error {…}));
//   - hear what happens to users: fx.Provide(user.AsListener(func(ctx context.Context, e user.Event) {…}));
//   - wrap or replace the store: fx.Decorate(func(s user.Store) user.Store { return myStore{s} }).
package user

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
	entidentity "github.com/wxlogin/wxlogin/ent/identity"
	"github.com/wxlogin/wxlogin/ent/predicate"
	entunionlink "github.com/wxlogin/wxlogin/ent/unionlink"
	entuser "github.com/wxlogin/wxlogin/ent/user"
	"github.com/wxlogin/wxlogin/internal/seal"
	"github.com/wxlogin/wxlogin/modules/database"
)

// ErrNotFound means no (active) user or identity answers to the given key.
var ErrNotFound = errors.New("user: not found")

// ErrIdentityTaken means an identity to bind (or its unionid) belongs to
// another user: accounts are never joined across users silently.
var ErrIdentityTaken = errors.New("user: the identity belongs to another user")

// ErrLastIdentity means detaching would leave the user without any way to
// log in.
var ErrLastIdentity = errors.New("user: the user's last identity")

// ValidationError says which profile field is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Limits of profile fields.
const (
	MaxNicknameRunes = 64
	MaxAvatarURLLen  = 1024
)

// IdentityKey names one identity: one account on one app.
type IdentityKey struct {
	Provider, AppID, OpenID string
}

// KeyOf returns the key of an identity row.
func KeyOf(id *ent.Identity) IdentityKey {
	return IdentityKey{Provider: id.Provider, AppID: id.Appid, OpenID: id.Openid}
}

// LoginInput is what the platform told us about the device's user.
type LoginInput struct {
	// Provider is the platform ("wechat", …), Kind the app's kind
	// ("miniprogram" or "oauth").
	Provider, Kind string
	AppID, OpenID  string
	// UnionID is the platform-scoped id; empty when the platform gave none.
	UnionID string
	// SessionKey is the identity's newest session_key (empty where the
	// platform has none); it is stored, never returned.
	SessionKey string
	// Nickname and AvatarURL fill the user's profile where it is empty (a
	// profile the platform handed over with the login).
	Nickname, AvatarURL string
	// AnonymousOpenID is a per-device id (Douyin's anonymous_openid). Alone
	// (OpenID empty) it logs in an anonymous identity; with OpenID it ties
	// the device's anonymous user to the real identity (see Login).
	AnonymousOpenID string
}

// Anonymous identities: a device not logged in to its host app (Douyin).
const (
	// KindAnonymous is the kind of an anonymous identity.
	KindAnonymous = "anonymous"
	// AnonymousPrefix starts an anonymous identity's openid, so it never
	// meets a real openid.
	AnonymousPrefix = "anonymous:"
)

// anonymousKey is the key of the device's anonymous identity.
func (in LoginInput) anonymousKey() IdentityKey {
	return IdentityKey{Provider: in.Provider, AppID: in.AppID, OpenID: AnonymousPrefix + in.AnonymousOpenID}
}

// Key returns the identity key of the input.
func (in LoginInput) Key() IdentityKey {
	return IdentityKey{Provider: in.Provider, AppID: in.AppID, OpenID: in.OpenID}
}

func (in LoginInput) check() error {
	switch {
	case in.Provider == "" || in.AppID == "" || in.OpenID == "":
		return errors.New("user: login needs provider, appid and openid (or an anonymous openid)")
	case len(in.Provider) > 16 || len(in.AppID) > 64 || len(in.OpenID) > 128 || len(in.UnionID) > 128 ||
		len(in.SessionKey) > 128 || len(in.Kind) > 16 || len(in.AnonymousOpenID) > 128-len(AnonymousPrefix):
		return errors.New("user: login identity fields are too long")
	}
	return nil
}

// LoginResult is the outcome of a login.
type LoginResult struct {
	// User is the user, with Edges.Identities loaded.
	User *ent.User
	// Identity is the identity logged in with.
	Identity *ent.Identity
	// Created is true when this login created the user (a first login).
	Created bool
	// Merged is set when this login found two users to be one person.
	Merged *Merged
}

// ProfileUpdate changes the fields that are non-nil.
type ProfileUpdate struct {
	Nickname  *string
	AvatarURL *string
}

// Phone is a verified phone number.
type Phone struct {
	Number      string // with country code as the platform gives it, e.g. "+86 13800000000" or "13800000000"
	PureNumber  string // without country code
	CountryCode string
}

// Store is what the HTTP layer needs from user storage.
type Store interface {
	// Login finds or creates the user of an identity, records the new
	// session_key and login time, and links or merges by unionid.
	Login(ctx context.Context, in LoginInput) (*LoginResult, error)
	// Get returns the user with its identities, or ErrNotFound for an
	// unknown, merged or deleted user.
	Get(ctx context.Context, id int) (*ent.User, error)
	// Identity returns the identity key names if it belongs to the user,
	// else ErrNotFound.
	Identity(ctx context.Context, userID int, key IdentityKey) (*ent.Identity, error)
	// UpdateProfile validates and applies the update.
	UpdateProfile(ctx context.Context, id int, up ProfileUpdate) (*ent.User, error)
	// SetPhone stores a phone number a platform verified.
	SetPhone(ctx context.Context, id int, p Phone) (*ent.User, error)
	// SetSessionKey replaces an identity's stored session_key.
	SetSessionKey(ctx context.Context, key IdentityKey, sessionKey string) error
	// LinkUnionID records a unionid learnt after login (decrypted user
	// info) on the user's identity; it merges users the way Login does.
	LinkUnionID(ctx context.Context, userID int, key IdentityKey, unionid string) (*LoginResult, error)
	// Bind attaches the identity in describes to the user (a person who
	// uses the product on two platforms); ErrIdentityTaken when it, or its
	// unionid, belongs to another user. Binding one's own identity again
	// changes nothing.
	Bind(ctx context.Context, userID int, in LoginInput) (*LoginResult, error)
	// Unbind detaches the user's identities of one app and returns them;
	// ErrLastIdentity when none would be left, ErrNotFound when there are
	// none.
	Unbind(ctx context.Context, userID int, provider, appid string) ([]IdentityKey, error)

	// Ban bans the user until b.Until (for good without it); logins are
	// refused with a *BannedError and listeners hear Banned.
	Ban(ctx context.Context, id int, b Ban) (*ent.User, error)
	// Unban lifts the user's ban (Unbanned when there was one).
	Unban(ctx context.Context, id int) (*ent.User, error)
	// CheckActive is nil for a user who may hold sessions, a *BannedError
	// for a banned one, ErrNotFound for an unknown, deleted or merged one.
	CheckActive(ctx context.Context, id int) error
	// Delete erases the user (delete hooks included, in one transaction),
	// leaving a tombstone; listeners hear Deleted. cause is CauseUser,
	// CauseOperator or CausePlatform.
	Delete(ctx context.Context, id int, cause string) error
	// RemoveIdentity erases one identity; its user's last one deletes the user.
	RemoveIdentity(ctx context.Context, key IdentityKey, cause string) (Removal, error)
	// ClearProfile erases profile fields; listeners hear ProfileCleared.
	ClearProfile(ctx context.Context, id int, pc ProfileClear) (*ent.User, error)
	// UserOf returns the user owning an identity, or ErrNotFound.
	UserOf(ctx context.Context, key IdentityKey) (*ent.User, error)
	// Find returns the users matching one openid, unionid or phone number.
	Find(ctx context.Context, q Query) ([]*ent.User, error)
}

// EntStore is the Store on an ent client.
type EntStore struct {
	client      *ent.Client
	batch       *database.Batch
	ring        *seal.Ring
	now         func() time.Time
	merge       bool
	hooks       []MergeHook
	deleteHooks []DeleteHook
	listeners   []Listener
	log         *zap.Logger
}

var _ Store = (*EntStore)(nil)

// Option configures NewEntStore.
type Option func(*EntStore)

// WithMerge turns merging by unionid on (the default) or off.
func WithMerge(on bool) Option { return func(s *EntStore) { s.merge = on } }

// WithMergeHooks adds hooks run inside every merge's transaction.
func WithMergeHooks(hooks ...MergeHook) Option {
	return func(s *EntStore) { s.hooks = append(s.hooks, hooks...) }
}

// WithDeleteHooks adds hooks run inside every deletion's transaction.
func WithDeleteHooks(hooks ...DeleteHook) Option {
	return func(s *EntStore) { s.deleteHooks = append(s.deleteHooks, hooks...) }
}

// WithListeners adds listeners told about users after each commit.
func WithListeners(ls ...Listener) Option {
	return func(s *EntStore) { s.listeners = append(s.listeners, ls...) }
}

// WithSessionKeyRing encrypts the session keys kept at rest (AES-GCM, each
// bound to its identity). Without it they are stored as they come: the fx
// Module always sets one, from config.Identity.
func WithSessionKeyRing(r *seal.Ring) Option { return func(s *EntStore) { s.ring = r } }

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return func(s *EntStore) { s.log = l.Named("user") } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option {
	return func(s *EntStore) { s.now = func() time.Time { return now().UTC() } }
}

// NewEntStore returns a Store on client; merging is on unless WithMerge(false).
func NewEntStore(client *ent.Client, opts ...Option) *EntStore {
	s := &EntStore{client: client, now: func() time.Time { return time.Now().UTC() }, merge: true, log: zap.NewNop()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// loginAttempts bounds the retries of a login that lost a race against a
// concurrent first login of the same person (a unique key said so).
const loginAttempts = 8

// Login finds or creates the identity's user. See the package doc.
//
// A device id alone (AnonymousOpenID without OpenID) logs in the device's
// anonymous identity. With both, the real identity is the one logged in,
// and the device's anonymous user is not lost: a real identity seen for the
// first time joins it (same user id), and a real identity that already has
// a user absorbs it (a merge, hooks included). A user who has a real
// identity is never absorbed this way (a device shared by two people).
func (s *EntStore) Login(ctx context.Context, in LoginInput) (*LoginResult, error) {
	if in.OpenID == "" && in.AnonymousOpenID != "" {
		in = LoginInput{Provider: in.Provider, Kind: KindAnonymous, AppID: in.AppID, OpenID: AnonymousPrefix + in.AnonymousOpenID}
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	for range loginAttempts {
		res, err := s.login(ctx, in)
		if err == nil && in.AnonymousOpenID != "" {
			err = s.adoptAnonymous(ctx, res, in)
		}
		if errors.Is(err, errRaced) || database.Retryable(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.notify(ctx, res, true)
		return res, nil
	}
	return nil, &StoreError{Op: "login", Err: fmt.Errorf("lost %d races in a row to concurrent logins", loginAttempts)}
}

// adoptAnonymous ties the device's anonymous identity to the user res
// logged in: it is created for that user, or its anonymous-only user is
// merged into that user.
func (s *EntStore) adoptAnonymous(ctx context.Context, res *LoginResult, in LoginInput) error {
	key := in.anonymousKey()
	return s.inTx(ctx, func(tx *ent.Tx) error {
		c := tx.Client()
		now := s.now()
		id, err := c.Identity.Query().Where(identityIs(key)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			err := c.Identity.Create().SetProvider(key.Provider).SetKind(KindAnonymous).SetAppid(key.AppID).SetOpenid(key.OpenID).
				SetLastLoginAt(now).SetCreatedAt(now).SetUpdatedAt(now).SetUserID(res.User.ID).Exec(ctx)
			if ent.IsConstraintError(err) {
				return errRaced
			}
			if err != nil {
				return unavailable("record the device", err)
			}
		case err != nil:
			return unavailable("read the device's identity", err)
		case id.UserID == res.User.ID:
			return nil
		default:
			only, err := anonymousOnly(ctx, c, id.UserID)
			if err != nil || !only {
				return err
			}
			from, err := c.User.Get(ctx, id.UserID)
			if err != nil {
				return unavailable("read user", err)
			}
			into, err := c.User.Get(ctx, res.User.ID)
			if err != nil {
				return unavailable("read user", err)
			}
			if err := s.mergeTx(ctx, tx, from, into); err != nil {
				return err
			}
			res.Merged = &Merged{From: from.ID, Into: into.ID}
		}
		u, err := s.loadByIdentity(ctx, c, in.Key())
		if err != nil {
			return err
		}
		if err := refuseBanned(u, now); err != nil {
			return err // the device's user was banned: so is the person now
		}
		res.User, res.Identity = u, identityIn(u, in.Key())
		return nil
	})
}

// anonymousOnly reports whether every identity of the user is anonymous.
func anonymousOnly(ctx context.Context, c *ent.Client, userID int) (bool, error) {
	n, err := c.Identity.Query().Where(entidentity.UserID(userID), entidentity.KindNEQ(KindAnonymous)).Count(ctx)
	if err != nil {
		return false, unavailable("read identities", err)
	}
	return n == 0, nil
}

// lockUser reads the user's row and locks it until the transaction ends
// (SQLite, with its single connection, needs no lock); nil when there is
// no such row.
func lockUser(ctx context.Context, c *ent.Client, id int) (*ent.User, error) {
	u, err := c.User.Query().Where(entuser.ID(id), func(s *entsql.Selector) {
		if s.Dialect() != dialect.SQLite {
			s.ForUpdate()
		}
	}).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("lock user", err)
	}
	return u, nil
}

// errRaced means a concurrent login won a unique key: start again.
var errRaced = errors.New("user: concurrent login, try again")

func (s *EntStore) login(ctx context.Context, in LoginInput) (*LoginResult, error) {
	now := s.now()
	key := in.Key()
	if s.batch != nil {
		res, ok, unknown, err := s.batchLogin(ctx, in, now)
		if err != nil {
			return nil, err
		}
		if unknown {
			// A first login: the user, the link and the identity at once.
			if res, ok, err = s.batchCreate(ctx, in, now); err != nil {
				return nil, err
			}
			if ok {
				return res, nil
			}
		} else if ok {
			if res.User, err = s.fillProfile(ctx, s.client, res.User, in); err != nil {
				return nil, err
			}
			res.Identity = identityIn(res.User, key)
			return res, nil
		}
		return s.slowLogin(ctx, in, now)
	}
	// Fast path: a known identity of a user who may log in, whose unionid
	// is what the platform says (or the platform said none): the read, then
	// one UPDATE. A banned user is refused before anything is written.
	u, err := s.loadByIdentity(ctx, s.client, key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if err := refuseBanned(u, now); err != nil {
			return nil, err
		}
		id := identityIn(u, key)
		if id == nil || in.UnionID != "" && (id.Unionid == nil || *id.Unionid != in.UnionID) {
			break // gone meanwhile, or a unionid learnt now: the slow path sorts it out
		}
		upd := s.client.Identity.Update().
			Where(identityIs(key), entidentity.UserID(u.ID)).
			SetLastLoginAt(now).
			SetUpdatedAt(now)
		if in.UnionID != "" {
			upd.Where(entidentity.Unionid(in.UnionID))
		}
		if in.SessionKey != "" {
			upd.SetSessionKey(s.sealKey(key, in.SessionKey))
		}
		if in.Kind != "" {
			upd.SetKind(in.Kind)
		}
		n, err := upd.Save(ctx)
		if err != nil {
			return nil, unavailable("login", err)
		}
		if n != 1 {
			break // changed meanwhile: the slow path sorts it out
		}
		id.LastLoginAt, id.UpdatedAt = &now, now
		if in.SessionKey != "" {
			id.SessionKey = in.SessionKey
		}
		if in.Kind != "" {
			id.Kind = in.Kind
		}
		if u, err = s.fillProfile(ctx, s.client, u, in); err != nil {
			return nil, err
		}
		return &LoginResult{User: u, Identity: identityIn(u, key)}, nil
	}
	return s.slowLogin(ctx, in, now)
}

// slowLogin is a login of a new identity, of one whose unionid is learnt
// now, or of a banned user (refused there, with nothing written): in a
// transaction.
func (s *EntStore) slowLogin(ctx context.Context, in LoginInput, now time.Time) (*LoginResult, error) {
	var res *LoginResult
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		var err error
		res, err = s.loginTx(ctx, tx, in, now)
		return err
	})
	return res, err
}

func (s *EntStore) loginTx(ctx context.Context, tx *ent.Tx, in LoginInput, now time.Time) (*LoginResult, error) {
	key := in.Key()
	c := tx.Client()
	res := &LoginResult{}
	id, err := c.Identity.Query().Where(identityIs(key)).Only(ctx)
	switch {
	case err == nil:
		if in.UnionID != "" && (id.Unionid == nil || *id.Unionid != in.UnionID) {
			if res.Merged, err = s.linkUnion(ctx, tx, id, in.UnionID); err != nil {
				return nil, err
			}
		}
		upd := c.Identity.UpdateOneID(id.ID).SetLastLoginAt(now).SetUpdatedAt(now)
		if in.SessionKey != "" {
			upd.SetSessionKey(s.sealKey(key, in.SessionKey))
		}
		if in.Kind != "" {
			upd.SetKind(in.Kind)
		}
		if err := upd.Exec(ctx); ent.IsNotFound(err) {
			return nil, errRaced // the user was deleted meanwhile: the next attempt makes a new one
		} else if err != nil {
			return nil, unavailable("login", err)
		}
	case ent.IsNotFound(err):
		userID, linked := 0, false
		if in.UnionID != "" {
			link, err := c.UnionLink.Query().Where(entunionlink.Provider(in.Provider), entunionlink.Unionid(in.UnionID)).Only(ctx)
			switch {
			case err == nil:
				userID, linked = link.UserID, true
				// Lock the person's user against a deletion in flight, and
				// read its latest state: a deleted one means start again.
				u, err := lockUser(ctx, c, userID)
				if err != nil {
					return nil, err
				}
				if u == nil || u.Status == entuser.StatusDeleted || u.Status == entuser.StatusMerged {
					return nil, errRaced
				}
			case !ent.IsNotFound(err):
				return nil, unavailable("login: read unionid", err)
			}
		}
		if userID == 0 && in.AnonymousOpenID != "" {
			// A real identity seen for the first time joins the device's
			// anonymous user.
			anon, err := c.Identity.Query().Where(identityIs(in.anonymousKey())).Only(ctx)
			switch {
			case err == nil:
				only, err := anonymousOnly(ctx, c, anon.UserID)
				if err != nil {
					return nil, err
				}
				if only {
					userID = anon.UserID
				}
			case !ent.IsNotFound(err):
				return nil, unavailable("login: read the device's identity", err)
			}
		}
		if userID == 0 {
			u, err := c.User.Create().SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
			if err != nil {
				return nil, unavailable("create", err)
			}
			userID, res.Created = u.ID, true
		}
		if in.UnionID != "" && !linked {
			err := c.UnionLink.Create().SetProvider(in.Provider).SetUnionid(in.UnionID).SetUserID(userID).SetCreatedAt(now).Exec(ctx)
			if ent.IsConstraintError(err) {
				return nil, errRaced // another first login of this person created the link
			}
			if err != nil {
				return nil, unavailable("link unionid", err)
			}
		}
		create := c.Identity.Create().
			SetProvider(in.Provider).SetKind(orDefault(in.Kind, "miniprogram")).
			SetAppid(in.AppID).SetOpenid(in.OpenID).
			SetSessionKey(s.sealKey(key, in.SessionKey)).
			SetLastLoginAt(now).SetCreatedAt(now).SetUpdatedAt(now).
			SetUserID(userID)
		if in.UnionID != "" {
			create.SetUnionid(in.UnionID)
		}
		if err := create.Exec(ctx); ent.IsConstraintError(err) {
			return nil, errRaced // a concurrent first login of this identity
		} else if err != nil {
			return nil, unavailable("create identity", err)
		}
	default:
		return nil, unavailable("login", err)
	}
	u, err := s.loadByIdentity(ctx, c, key)
	if err != nil {
		return nil, err
	}
	// A banned person logs in through no app: the whole login (a merge
	// with a banned user included) is rolled back.
	if err := refuseBanned(u, now); err != nil {
		return nil, err
	}
	if u, err = s.fillProfile(ctx, c, u, in); err != nil {
		return nil, err
	}
	res.User, res.Identity = u, identityIn(u, key)
	return res, nil
}

// linkUnion gives identity id the unionid: it records which user owns the
// unionid when nobody does, and merges id's user with the owner when it is
// another user (or, with merging off, only records it on the identity).
func (s *EntStore) linkUnion(ctx context.Context, tx *ent.Tx, id *ent.Identity, unionid string) (*Merged, error) {
	c := tx.Client()
	now := s.now()
	if err := c.Identity.UpdateOneID(id.ID).SetUnionid(unionid).SetUpdatedAt(now).Exec(ctx); err != nil {
		return nil, unavailable("record unionid", err)
	}
	link, err := c.UnionLink.Query().Where(entunionlink.Provider(id.Provider), entunionlink.Unionid(unionid)).Only(ctx)
	if ent.IsNotFound(err) {
		err := c.UnionLink.Create().SetProvider(id.Provider).SetUnionid(unionid).SetUserID(id.UserID).SetCreatedAt(now).Exec(ctx)
		if ent.IsConstraintError(err) {
			return nil, errRaced
		}
		if err != nil {
			return nil, unavailable("link unionid", err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, unavailable("read unionid", err)
	}
	if link.UserID == id.UserID {
		return nil, nil
	}
	if !s.merge {
		s.log.Warn("a unionid learnt late belongs to another user; merging is off (APP_IDENTITY_MERGE=off), so both users stay",
			zap.Int("user_id", id.UserID), zap.Int("unionid_user_id", link.UserID))
		return nil, nil
	}
	a, err := c.User.Get(ctx, id.UserID)
	if err != nil {
		return nil, unavailable("read user", err)
	}
	b, err := c.User.Get(ctx, link.UserID)
	if err != nil {
		return nil, unavailable("read user", err)
	}
	into, from := older(a, b)
	if err := s.mergeTx(ctx, tx, from, into); err != nil {
		return nil, err
	}
	return &Merged{From: from.ID, Into: into.ID}, nil
}

// older orders two users: the one created first (the lower id on a tie)
// comes first.
func older(a, b *ent.User) (first, second *ent.User) {
	if b.CreatedAt.Before(a.CreatedAt) || (b.CreatedAt.Equal(a.CreatedAt) && b.ID < a.ID) {
		return b, a
	}
	return a, b
}

// LinkUnionID records a unionid learnt after login on the caller's identity.
func (s *EntStore) LinkUnionID(ctx context.Context, userID int, key IdentityKey, unionid string) (*LoginResult, error) {
	if unionid == "" || len(unionid) > 128 {
		return nil, &ValidationError{Field: "unionid", Reason: "must be 1 to 128 characters"}
	}
	for range loginAttempts {
		var res *LoginResult
		err := s.inTx(ctx, func(tx *ent.Tx) error {
			c := tx.Client()
			id, err := c.Identity.Query().Where(identityIs(key), entidentity.UserID(userID)).Only(ctx)
			if ent.IsNotFound(err) {
				return ErrNotFound
			}
			if err != nil {
				return unavailable("read identity", err)
			}
			res = &LoginResult{}
			if id.Unionid == nil || *id.Unionid != unionid {
				if res.Merged, err = s.linkUnion(ctx, tx, id, unionid); err != nil {
					return err
				}
			}
			if res.User, err = s.loadByIdentity(ctx, c, key); err != nil {
				return err
			}
			if err := refuseBanned(res.User, s.now()); err != nil {
				return err // joined with a banned user: nothing of it is kept
			}
			res.Identity = identityIn(res.User, key)
			return nil
		})
		if errors.Is(err, errRaced) || database.Retryable(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.notify(ctx, res, false)
		return res, nil
	}
	return nil, &StoreError{Op: "link a unionid", Err: fmt.Errorf("lost %d races in a row", loginAttempts)}
}

// Bind attaches an identity to the user.
func (s *EntStore) Bind(ctx context.Context, userID int, in LoginInput) (*LoginResult, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	key := in.Key()
	for range loginAttempts {
		var res *LoginResult
		err := s.inTx(ctx, func(tx *ent.Tx) error {
			c := tx.Client()
			now := s.now()
			if _, err := c.User.Query().Where(entuser.ID(userID), entuser.StatusNotIn(entuser.StatusMerged, entuser.StatusDeleted)).OnlyID(ctx); err != nil {
				if ent.IsNotFound(err) {
					return ErrNotFound
				}
				return unavailable("read user", err)
			}
			id, err := c.Identity.Query().Where(identityIs(key)).Only(ctx)
			switch {
			case err == nil && id.UserID != userID:
				return ErrIdentityTaken
			case err == nil:
				upd := c.Identity.UpdateOneID(id.ID).SetLastLoginAt(now).SetUpdatedAt(now)
				if in.SessionKey != "" {
					upd.SetSessionKey(s.sealKey(key, in.SessionKey))
				}
				if err := upd.Exec(ctx); err != nil {
					return unavailable("bind", err)
				}
			case !ent.IsNotFound(err):
				return unavailable("read identity", err)
			default:
				if in.UnionID != "" {
					link, err := c.UnionLink.Query().Where(entunionlink.Provider(in.Provider), entunionlink.Unionid(in.UnionID)).Only(ctx)
					switch {
					case err == nil && link.UserID != userID:
						return ErrIdentityTaken // the person's account on that platform is another user's
					case ent.IsNotFound(err):
						err := c.UnionLink.Create().SetProvider(in.Provider).SetUnionid(in.UnionID).SetUserID(userID).SetCreatedAt(now).Exec(ctx)
						if ent.IsConstraintError(err) {
							return errRaced
						}
						if err != nil {
							return unavailable("link unionid", err)
						}
					case err != nil:
						return unavailable("read unionid", err)
					}
				}
				create := c.Identity.Create().
					SetProvider(in.Provider).SetKind(orDefault(in.Kind, "miniprogram")).
					SetAppid(in.AppID).SetOpenid(in.OpenID).SetSessionKey(s.sealKey(key, in.SessionKey)).
					SetLastLoginAt(now).SetCreatedAt(now).SetUpdatedAt(now).SetUserID(userID)
				if in.UnionID != "" {
					create.SetUnionid(in.UnionID)
				}
				if err := create.Exec(ctx); ent.IsConstraintError(err) {
					return errRaced
				} else if err != nil {
					return unavailable("bind", err)
				}
			}
			u, err := s.loadByIdentity(ctx, c, key)
			if err != nil {
				return err
			}
			res = &LoginResult{User: u, Identity: identityIn(u, key)}
			return nil
		})
		if errors.Is(err, errRaced) || database.Retryable(err) {
			continue
		}
		return res, err
	}
	return nil, &StoreError{Op: "bind", Err: fmt.Errorf("lost %d races in a row", loginAttempts)}
}

// Unbind detaches the user's identities of one app.
func (s *EntStore) Unbind(ctx context.Context, userID int, provider, appid string) ([]IdentityKey, error) {
	var gone []IdentityKey
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		c := tx.Client()
		all, err := c.Identity.Query().Where(entidentity.UserID(userID)).All(ctx)
		if err != nil {
			return unavailable("read identities", err)
		}
		var keep, drop []*ent.Identity
		for _, id := range all {
			if id.Provider == provider && id.Appid == appid {
				drop = append(drop, id)
			} else {
				keep = append(keep, id)
			}
		}
		if len(drop) == 0 {
			return ErrNotFound
		}
		real := 0
		for _, id := range keep {
			if id.Kind != KindAnonymous {
				real++
			}
		}
		if real == 0 {
			return ErrLastIdentity
		}
		ids := make([]int, len(drop))
		for i, id := range drop {
			ids[i] = id.ID
			gone = append(gone, KeyOf(id))
		}
		if _, err := c.Identity.Delete().Where(entidentity.IDIn(ids...)).Exec(ctx); err != nil {
			return unavailable("unbind", err)
		}
		// A unionid no remaining identity carries is no longer the user's.
		still := map[string]bool{}
		for _, id := range keep {
			if id.Unionid != nil {
				still[id.Provider+"\x00"+*id.Unionid] = true
			}
		}
		for _, id := range drop {
			if id.Unionid != nil && !still[id.Provider+"\x00"+*id.Unionid] {
				if _, err := c.UnionLink.Delete().Where(entunionlink.Provider(id.Provider), entunionlink.Unionid(*id.Unionid),
					entunionlink.UserID(userID)).Exec(ctx); err != nil {
					return unavailable("unbind", err)
				}
			}
		}
		return nil
	})
	return gone, err
}

// fillProfile sets the nickname and avatar the platform handed over where
// the user has none; values that do not validate are ignored.
func (s *EntStore) fillProfile(ctx context.Context, c *ent.Client, u *ent.User, in LoginInput) (*ent.User, error) {
	upd := c.User.UpdateOneID(u.ID)
	changed := false
	if u.Nickname == "" && in.Nickname != "" {
		if n, err := ValidateNickname(in.Nickname); err == nil {
			upd.SetNickname(n)
			changed = true
		}
	}
	if u.AvatarURL == "" && in.AvatarURL != "" {
		if a, err := ValidateAvatarURL(in.AvatarURL); err == nil && a != "" {
			upd.SetAvatarURL(a)
			changed = true
		}
	}
	if !changed {
		return u, nil
	}
	ids := u.Edges.Identities
	u, err := upd.SetUpdatedAt(s.now()).Save(ctx)
	if err != nil {
		return nil, unavailable("fill profile", err)
	}
	u.Edges.Identities = ids
	return u, nil
}

// loadByIdentity reads the active user owning key, with its identities.
func (s *EntStore) loadByIdentity(ctx context.Context, c *ent.Client, key IdentityKey) (*ent.User, error) {
	u, err := c.User.Query().
		Where(entuser.HasIdentitiesWith(identityIs(key)), entuser.StatusNotIn(entuser.StatusMerged, entuser.StatusDeleted)).
		WithIdentities(func(q *ent.IdentityQuery) { q.Order(ent.Asc(entidentity.FieldID)) }).
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("load", err)
	}
	s.openKeys(u.Edges.Identities...)
	return u, nil
}

// identityIn returns the user's loaded identity named by key.
func identityIn(u *ent.User, key IdentityKey) *ent.Identity {
	for _, id := range u.Edges.Identities {
		if KeyOf(id) == key {
			return id
		}
	}
	return nil
}

func identityIs(key IdentityKey) predicate.Identity {
	return entidentity.And(entidentity.Provider(key.Provider), entidentity.Appid(key.AppID), entidentity.Openid(key.OpenID))
}

// Get returns the user with its identities.
func (s *EntStore) Get(ctx context.Context, id int) (*ent.User, error) {
	u, err := s.client.User.Query().
		Where(entuser.ID(id), entuser.StatusNotIn(entuser.StatusMerged, entuser.StatusDeleted)).
		WithIdentities(func(q *ent.IdentityQuery) { q.Order(ent.Asc(entidentity.FieldID)) }).
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get", err)
	}
	s.openKeys(u.Edges.Identities...)
	return u, nil
}

// Identity returns the identity key names if it belongs to the user.
func (s *EntStore) Identity(ctx context.Context, userID int, key IdentityKey) (*ent.Identity, error) {
	id, err := s.client.Identity.Query().Where(identityIs(key), entidentity.UserID(userID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("read identity", err)
	}
	s.openKeys(id)
	return id, nil
}

// UpdateProfile validates every given field before writing any.
//
// It runs in a transaction, so that hooks on the user's row (modules/avatar
// swaps avatar files under the row's lock) see one change at a time.
func (s *EntStore) UpdateProfile(ctx context.Context, id int, up ProfileUpdate) (*ent.User, error) {
	var nickname, avatar *string
	if up.Nickname != nil {
		n, err := ValidateNickname(*up.Nickname)
		if err != nil {
			return nil, err
		}
		nickname = &n
	}
	if up.AvatarURL != nil {
		a, err := ValidateAvatarURL(*up.AvatarURL)
		if err != nil {
			return nil, err
		}
		avatar = &a
	}
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		upd := tx.User.UpdateOneID(id).
			Where(entuser.StatusNotIn(entuser.StatusMerged, entuser.StatusDeleted)).
			SetUpdatedAt(s.now()).
			SetNillableNickname(nickname).
			SetNillableAvatarURL(avatar)
		err := upd.Exec(ctx)
		if ent.IsNotFound(err) {
			return ErrNotFound
		}
		return unavailable("update", err)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// SetPhone stores p.
func (s *EntStore) SetPhone(ctx context.Context, id int, p Phone) (*ent.User, error) {
	number := p.PureNumber
	if number == "" {
		number = p.Number
	}
	if number == "" || len(number) > 32 {
		return nil, &ValidationError{Field: "phone", Reason: "the platform returned no usable phone number"}
	}
	upd := s.client.User.UpdateOneID(id).
		Where(entuser.StatusNotIn(entuser.StatusMerged, entuser.StatusDeleted)).
		SetUpdatedAt(s.now()).SetPhone(number)
	if p.CountryCode != "" && len(p.CountryCode) <= 8 {
		upd.SetPhoneCountryCode(p.CountryCode)
	}
	return s.save(ctx, upd)
}

// SetSessionKey replaces an identity's stored session_key.
func (s *EntStore) SetSessionKey(ctx context.Context, key IdentityKey, sessionKey string) error {
	n, err := s.client.Identity.Update().Where(identityIs(key)).
		SetSessionKey(s.sealKey(key, sessionKey)).SetUpdatedAt(s.now()).Save(ctx)
	if err != nil {
		return unavailable("store session key", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *EntStore) save(ctx context.Context, upd *ent.UserUpdateOne) (*ent.User, error) {
	u, err := upd.Save(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("update", err)
	}
	return s.Get(ctx, u.ID)
}

// sealKey encrypts a session key for the identity key names.
func (s *EntStore) sealKey(key IdentityKey, plain string) string {
	if s.ring == nil || plain == "" {
		return plain
	}
	return s.ring.Seal([]byte(plain), keyAAD(key))
}

// openKeys replaces the stored session keys of ids by their plaintext; a
// key that does not open (its encryption key was retired) reads as none,
// which the open-data routes answer with "log in again".
func (s *EntStore) openKeys(ids ...*ent.Identity) {
	for _, id := range ids {
		if id.SessionKey == "" || !seal.IsSealed(id.SessionKey) {
			continue // none, or kept in clear by an older version
		}
		if s.ring == nil {
			id.SessionKey = ""
			continue
		}
		plain, err := s.ring.Open(id.SessionKey, keyAAD(KeyOf(id)))
		if err != nil {
			s.log.Warn("a stored session key does not open with APP_ENCRYPTION_KEYS; the user must log in again",
				zap.String("appid", id.Appid))
			id.SessionKey = ""
			continue
		}
		id.SessionKey = string(plain)
	}
}

// keyAAD binds a sealed session key to its identity.
func keyAAD(k IdentityKey) []byte { return []byte(k.Provider + "\x00" + k.AppID + "\x00" + k.OpenID) }

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *EntStore) inTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	tx, err := s.client.Tx(ctx)
	if err != nil {
		return unavailable("begin transaction", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return unavailable("commit", err)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ValidateNickname trims n and checks it is valid UTF-8, 1..MaxNicknameRunes
// characters, without control or invisible format characters, and with at
// least one visible character (see nicknameCharacters).
func ValidateNickname(n string) (string, error) {
	if !utf8.ValidString(n) {
		return "", &ValidationError{Field: "nickname", Reason: "must be valid UTF-8"}
	}
	n = strings.TrimSpace(n)
	if n == "" {
		return "", &ValidationError{Field: "nickname", Reason: "must not be empty"}
	}
	if utf8.RuneCountInString(n) > MaxNicknameRunes {
		return "", &ValidationError{Field: "nickname", Reason: fmt.Sprintf("must be at most %d characters", MaxNicknameRunes)}
	}
	if err := nicknameCharacters(n); err != nil {
		return "", err
	}
	return n, nil
}

// ValidateAvatarURL checks a is an absolute http(s) URL of bounded length;
// the empty string clears the avatar.
func ValidateAvatarURL(a string) (string, error) {
	a = strings.TrimSpace(a)
	if a == "" {
		return "", nil
	}
	if len(a) > MaxAvatarURLLen || !utf8.ValidString(a) {
		return "", &ValidationError{Field: "avatar_url", Reason: fmt.Sprintf("must be a URL of at most %d bytes", MaxAvatarURLLen)}
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", &ValidationError{Field: "avatar_url", Reason: "must be an absolute http or https URL"}
	}
	return a, nil
}
