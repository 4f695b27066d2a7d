// Package user keeps mini program users in the database through ent: the
// find-or-create at login (one user per (appid, openid), even under
// concurrent first logins), the server-side session_key, and the profile.
//
// Module provides [Store] (an [*EntStore]). An application that keeps users
// elsewhere provides its own Store with fx.Decorate(func(Store) Store {...})
// or replaces the module; the HTTP handlers only see the interface.
package user

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/ent"
	entuser "github.com/wxlogin/wxlogin/ent/user"
)

// Module provides the ent-backed Store.
var Module = fx.Module("user",
	fx.Provide(fx.Annotate(NewEntStore, fx.As(new(Store)))),
)

// ErrNotFound means no user has the given id.
var ErrNotFound = errors.New("user: not found")

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

// LoginInput is what code2Session told us about the device's user.
type LoginInput struct {
	AppID, OpenID, UnionID string
	// SessionKey is the user's newest session_key; it is stored, never returned.
	SessionKey string
}

// ProfileUpdate changes the fields that are non-nil.
type ProfileUpdate struct {
	Nickname  *string
	AvatarURL *string
	UnionID   *string
}

// Phone is a verified phone number.
type Phone struct {
	Number      string // with country code as WeChat gives it, e.g. "+86 13800000000" or "13800000000"
	PureNumber  string // without country code
	CountryCode string
}

// Store is what the HTTP layer needs from user storage.
type Store interface {
	// Login finds or creates the user and records the new session_key and login time.
	Login(ctx context.Context, in LoginInput) (*ent.User, error)
	// Get returns the user or ErrNotFound.
	Get(ctx context.Context, id int) (*ent.User, error)
	// UpdateProfile validates and applies the update.
	UpdateProfile(ctx context.Context, id int, up ProfileUpdate) (*ent.User, error)
	// SetPhone stores a phone number verified by WeChat.
	SetPhone(ctx context.Context, id int, p Phone) (*ent.User, error)
	// SetSessionKey replaces the stored session_key (after resetUserSessionKey).
	SetSessionKey(ctx context.Context, id int, sessionKey string) error
}

// EntStore is the Store on an ent client.
type EntStore struct {
	client *ent.Client
	now    func() time.Time
}

var _ Store = (*EntStore)(nil)

// NewEntStore returns a Store on client.
func NewEntStore(client *ent.Client) *EntStore {
	return &EntStore{client: client, now: func() time.Time { return time.Now().UTC() }}
}

// Login upserts on the unique (appid, openid) key, so concurrent first
// logins of one openid create exactly one row; a unionid is only ever
// added, never erased by a login that lacks it.
func (s *EntStore) Login(ctx context.Context, in LoginInput) (*ent.User, error) {
	if in.AppID == "" || in.OpenID == "" || in.SessionKey == "" {
		return nil, errors.New("user: login needs appid, openid and session_key")
	}
	now := s.now()
	create := s.client.User.Create().
		SetAppid(in.AppID).
		SetOpenid(in.OpenID).
		SetSessionKey(in.SessionKey).
		SetLastLoginAt(now).
		SetCreatedAt(now).
		SetUpdatedAt(now)
	if in.UnionID != "" {
		create.SetUnionid(in.UnionID)
	}
	err := create.
		OnConflictColumns(entuser.FieldAppid, entuser.FieldOpenid).
		Update(func(u *ent.UserUpsert) {
			u.SetSessionKey(in.SessionKey)
			u.SetLastLoginAt(now)
			u.SetUpdatedAt(now)
			if in.UnionID != "" {
				u.SetUnionid(in.UnionID)
			}
		}).
		Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("user: login upsert: %w", err)
	}
	u, err := s.client.User.Query().
		Where(entuser.Appid(in.AppID), entuser.Openid(in.OpenID)).
		Only(ctx)
	if err != nil {
		return nil, fmt.Errorf("user: load after login: %w", err)
	}
	return u, nil
}

// Get returns the user with id.
func (s *EntStore) Get(ctx context.Context, id int) (*ent.User, error) {
	u, err := s.client.User.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("user: get: %w", err)
	}
	return u, nil
}

// UpdateProfile validates every given field before writing any.
func (s *EntStore) UpdateProfile(ctx context.Context, id int, up ProfileUpdate) (*ent.User, error) {
	upd := s.client.User.UpdateOneID(id).SetUpdatedAt(s.now())
	if up.Nickname != nil {
		n, err := ValidateNickname(*up.Nickname)
		if err != nil {
			return nil, err
		}
		upd.SetNickname(n)
	}
	if up.AvatarURL != nil {
		a, err := ValidateAvatarURL(*up.AvatarURL)
		if err != nil {
			return nil, err
		}
		upd.SetAvatarURL(a)
	}
	if up.UnionID != nil && *up.UnionID != "" {
		upd.SetUnionid(*up.UnionID)
	}
	return s.save(ctx, upd)
}

// SetPhone stores p.
func (s *EntStore) SetPhone(ctx context.Context, id int, p Phone) (*ent.User, error) {
	number := p.PureNumber
	if number == "" {
		number = p.Number
	}
	if number == "" || len(number) > 32 {
		return nil, &ValidationError{Field: "phone", Reason: "WeChat returned no usable phone number"}
	}
	upd := s.client.User.UpdateOneID(id).SetUpdatedAt(s.now()).SetPhone(number)
	if p.CountryCode != "" && len(p.CountryCode) <= 8 {
		upd.SetPhoneCountryCode(p.CountryCode)
	}
	return s.save(ctx, upd)
}

// SetSessionKey replaces the stored session_key.
func (s *EntStore) SetSessionKey(ctx context.Context, id int, sessionKey string) error {
	_, err := s.save(ctx, s.client.User.UpdateOneID(id).SetUpdatedAt(s.now()).SetSessionKey(sessionKey))
	return err
}

func (s *EntStore) save(ctx context.Context, upd *ent.UserUpdateOne) (*ent.User, error) {
	u, err := upd.Save(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("user: update: %w", err)
	}
	return u, nil
}

// ValidateNickname trims n and checks it is valid UTF-8, printable, and
// 1..MaxNicknameRunes characters.
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
	for _, r := range n {
		if unicode.IsControl(r) {
			return "", &ValidationError{Field: "nickname", Reason: "must not contain control characters"}
		}
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
