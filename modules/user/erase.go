package user

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
	entidentity "github.com/wxlogin/wxlogin/ent/identity"
	"github.com/wxlogin/wxlogin/ent/predicate"
	entsession "github.com/wxlogin/wxlogin/ent/session"
	entunionlink "github.com/wxlogin/wxlogin/ent/unionlink"
	entuser "github.com/wxlogin/wxlogin/ent/user"
)

// Who asked for a deletion or an erasure ([Deleted], [ProfileCleared] and
// [IdentityRemoved] carry it).
const (
	// CauseUser: the person, through the API (DELETE /api/v1/me).
	CauseUser = "user"
	// CauseOperator: an operator (the admin API).
	CauseOperator = "operator"
	// CausePlatform: the platform told us (WeChat's authorization events).
	CausePlatform = "platform"
)

// ErrDeleteAborted wraps the failure of a delete hook: the deletion did not
// happen and nothing of it was kept.
var ErrDeleteAborted = errors.New("user: deletion aborted")

// Field names a profile field that [EntStore.ClearProfile] erases.
type Field string

// Profile fields.
const (
	FieldNickname Field = "nickname"
	FieldAvatar   Field = "avatar"
	FieldPhone    Field = "phone"
)

// ProfileClear says what to erase from a profile and why.
type ProfileClear struct {
	Fields []Field
	// Cause is free text for listeners, e.g. "wechat:user_authorization_revoke".
	Cause string
	// RevokeInfo are the platform's codes of what was withdrawn, passed on
	// to listeners.
	RevokeInfo []int
}

// Query finds users by exactly one of its fields: an identity's openid (on
// any app), a unionid, or a phone number (as stored: without country code).
type Query struct {
	OpenID, UnionID, Phone string
}

// MaxFound bounds the users Find returns.
const MaxFound = 100

// Delete deletes the user at their own request or an operator's: in one
// transaction the delete hooks run, then every identity (openid, unionid,
// session_key) and unionid link is removed, the sessions' copies of the
// openid and device name are blanked, and the user's row keeps its id and
// status "deleted" only (nickname, avatar, phone, ban erased; an uploaded
// avatar file goes with the avatar URL, see modules/avatar). A later login
// through the same account creates a new user. Listeners hear [Deleted],
// which is what ends the sessions (modules/auth).
//
// Deleting a deleted user again changes nothing and is not an error;
// ErrNotFound for an unknown or merged user; a failing hook gives
// ErrDeleteAborted.
func (s *EntStore) Delete(ctx context.Context, id int, cause string) error {
	done := false
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		u, err := lockUser(ctx, tx.Client(), id)
		switch {
		case err != nil:
			return err
		case u == nil:
			return ErrNotFound
		case u.Status == entuser.StatusMerged:
			return ErrNotFound
		case u.Status == entuser.StatusDeleted:
			return nil
		}
		if err := s.deleteTx(ctx, tx, id); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil || !done {
		return err
	}
	s.log.Info("user deleted; personal data erased", zap.Int("user_id", id), zap.String("cause", cause))
	s.emit(context.WithoutCancel(ctx), Deleted{UserID: id, Cause: cause})
	return nil
}

// deleteTx runs the delete hooks, then erases the user in tx.
func (s *EntStore) deleteTx(ctx context.Context, tx *ent.Tx, id int) error {
	for _, h := range s.deleteHooks {
		if err := h(ctx, tx, id); err != nil {
			return fmt.Errorf("%w: a delete hook failed (user %d): %w", ErrDeleteAborted, id, err)
		}
	}
	c := tx.Client()
	if _, err := c.Identity.Delete().Where(entidentity.UserID(id)).Exec(ctx); err != nil {
		return unavailable("erase identities", err)
	}
	if _, err := c.UnionLink.Delete().Where(entunionlink.UserID(id)).Exec(ctx); err != nil {
		return unavailable("erase unionid links", err)
	}
	if err := blankSessions(ctx, c, entsession.UserID(id)); err != nil {
		return err
	}
	// One row at a time (UpdateOne), so that hooks on avatar changes (the
	// avatar module removes our stored file after the commit) see it.
	err := c.User.UpdateOneID(id).
		SetStatus(entuser.StatusDeleted).
		SetNickname("").SetAvatarURL("").ClearPhone().ClearPhoneCountryCode().
		ClearBannedUntil().ClearBanReason().ClearMergedInto().
		SetUpdatedAt(s.now()).Exec(ctx)
	if err != nil {
		return unavailable("erase user", err)
	}
	return nil
}

// blankSessions erases the personal data that sessions keep (the openid of
// the identity logged in with, the device's name), ended or not. The token
// strategies keep only what tells a token apart.
func blankSessions(ctx context.Context, c *ent.Client, where ...predicate.Session) error {
	_, err := c.Session.Update().Where(where...).SetOpenid("").SetDevice("").Save(ctx)
	if err != nil {
		return unavailable("erase sessions' identities", err)
	}
	return nil
}

// Removal is what [EntStore.RemoveIdentity] did.
type Removal struct {
	UserID int
	// UserDeleted is true when the identity was the user's last: the user
	// was deleted (as by Delete).
	UserDeleted bool
}

// RemoveIdentity erases one identity (its openid, unionid, session_key and
// the sessions' copies of it) because the person cancelled that account on
// the platform. When it was the user's last identity (anonymous ones do not
// count) the user is deleted as by [EntStore.Delete] ([Deleted]); else
// listeners hear [IdentityRemoved]. ErrNotFound when no identity has key.
func (s *EntStore) RemoveIdentity(ctx context.Context, key IdentityKey, cause string) (Removal, error) {
	var out Removal
	err := s.inTx(ctx, func(tx *ent.Tx) error {
		c := tx.Client()
		id, err := c.Identity.Query().Where(identityIs(key)).Only(ctx)
		if ent.IsNotFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return unavailable("read identity", err)
		}
		out = Removal{UserID: id.UserID}
		if _, err := lockUser(ctx, c, id.UserID); err != nil {
			return err
		}
		others, err := c.Identity.Query().Where(entidentity.UserID(id.UserID), entidentity.IDNEQ(id.ID)).All(ctx)
		if err != nil {
			return unavailable("read identities", err)
		}
		if !slices.ContainsFunc(others, func(o *ent.Identity) bool { return o.Kind != KindAnonymous }) {
			out.UserDeleted = true
			return s.deleteTx(ctx, tx, id.UserID)
		}
		if err := c.Identity.DeleteOneID(id.ID).Exec(ctx); err != nil {
			return unavailable("erase identity", err)
		}
		if id.Unionid != nil && !slices.ContainsFunc(others, func(o *ent.Identity) bool {
			return o.Provider == id.Provider && o.Unionid != nil && *o.Unionid == *id.Unionid
		}) {
			_, err := c.UnionLink.Delete().Where(entunionlink.Provider(id.Provider), entunionlink.Unionid(*id.Unionid),
				entunionlink.UserID(id.UserID)).Exec(ctx)
			if err != nil {
				return unavailable("erase unionid link", err)
			}
		}
		return blankSessions(ctx, c, entsession.UserID(id.UserID), entsession.Provider(key.Provider),
			entsession.Appid(key.AppID), entsession.Openid(key.OpenID))
	})
	if err != nil {
		return Removal{}, err
	}
	bg := context.WithoutCancel(ctx)
	if out.UserDeleted {
		s.log.Info("user deleted with their last identity; personal data erased", zap.Int("user_id", out.UserID), zap.String("cause", cause))
		s.emit(bg, Deleted{UserID: out.UserID, Cause: cause})
	} else {
		s.log.Info("identity erased", zap.Int("user_id", out.UserID), zap.String("provider", key.Provider),
			zap.String("appid", key.AppID), zap.String("cause", cause))
		s.emit(bg, IdentityRemoved{UserID: out.UserID, Identity: key, Cause: cause})
	}
	return out, nil
}

// ClearProfile erases profile fields (an uploaded avatar file goes with its
// URL, see modules/avatar) and tells the listeners ([ProfileCleared]), even
// when no field was named: the person withdrew something only business
// modules keep. ErrNotFound for an unknown, deleted or merged user.
func (s *EntStore) ClearProfile(ctx context.Context, id int, pc ProfileClear) (*ent.User, error) {
	upd := s.client.User.UpdateOneID(id).
		Where(entuser.StatusNotIn(entuser.StatusMerged, entuser.StatusDeleted)).
		SetUpdatedAt(s.now())
	var fields []Field
	for _, f := range pc.Fields {
		if slices.Contains(fields, f) {
			continue
		}
		switch f {
		case FieldNickname:
			upd.SetNickname("")
		case FieldAvatar:
			upd.SetAvatarURL("")
		case FieldPhone:
			upd.ClearPhone().ClearPhoneCountryCode()
		default:
			return nil, &ValidationError{Field: "fields", Reason: fmt.Sprintf("unknown profile field %q", f)}
		}
		fields = append(fields, f)
	}
	u, err := s.save(ctx, upd)
	if err != nil {
		return nil, err
	}
	s.log.Info("profile fields erased", zap.Int("user_id", id), zap.Any("fields", fields), zap.String("cause", pc.Cause))
	s.emit(context.WithoutCancel(ctx), ProfileCleared{UserID: id, Fields: fields, Cause: pc.Cause, RevokeInfo: pc.RevokeInfo})
	return u, nil
}

// UserOf returns the user (with identities) owning the identity key names,
// or ErrNotFound.
func (s *EntStore) UserOf(ctx context.Context, key IdentityKey) (*ent.User, error) {
	return s.loadByIdentity(ctx, s.client, key)
}

// Find returns the users (with identities, banned ones included, deleted
// and merged ones not) matching q, at most MaxFound, by id.
func (s *EntStore) Find(ctx context.Context, q Query) ([]*ent.User, error) {
	q.OpenID, q.UnionID, q.Phone = strings.TrimSpace(q.OpenID), strings.TrimSpace(q.UnionID), strings.TrimSpace(q.Phone)
	given := 0
	for _, v := range []string{q.OpenID, q.UnionID, q.Phone} {
		if v != "" {
			given++
			if len(v) > 128 {
				return nil, &ValidationError{Field: "query", Reason: "a value is too long"}
			}
		}
	}
	if given != 1 {
		return nil, &ValidationError{Field: "query", Reason: "give exactly one of openid, unionid, phone"}
	}
	query := s.client.User.Query().Where(entuser.StatusNotIn(entuser.StatusMerged, entuser.StatusDeleted))
	switch {
	case q.OpenID != "":
		query.Where(entuser.HasIdentitiesWith(entidentity.Openid(q.OpenID)))
	case q.UnionID != "":
		query.Where(entuser.Or(
			entuser.HasIdentitiesWith(entidentity.Unionid(q.UnionID)),
			entuser.HasUnionLinksWith(entunionlink.Unionid(q.UnionID)),
		))
	default:
		query.Where(entuser.Phone(strings.TrimPrefix(q.Phone, "+86")))
	}
	users, err := query.
		WithIdentities(func(q *ent.IdentityQuery) { q.Order(ent.Asc(entidentity.FieldID)) }).
		Order(ent.Asc(entuser.FieldID)).Limit(MaxFound).
		All(ctx)
	if err != nil {
		return nil, unavailable("find", err)
	}
	for _, u := range users {
		for _, id := range u.Edges.Identities {
			id.SessionKey = "" // not needed to look at a user; kept sealed
		}
	}
	return users, nil
}
