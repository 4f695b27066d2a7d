package user

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wxlogin/wxlogin/ent"
	entuser "github.com/wxlogin/wxlogin/ent/user"
	"github.com/wxlogin/wxlogin/modules/database"
)

// WithBatch lets a returning login on MySQL/MariaDB take one round trip:
// the identity's update and the read of its user with every identity go
// together. Without it (other databases) the same is done statement by
// statement.
func WithBatch(b *database.Batch) Option { return func(s *EntStore) { s.batch = b } }

// loginColumns are what a login reads of the user and of its identities,
// in the order batchLogin scans them.
const loginColumns = "u.id, u.created_at, u.updated_at, u.nickname, u.avatar_url, u.phone, u.phone_country_code, " +
	"u.status, u.banned_until, u.ban_reason, u.merged_into, " +
	"i.id, i.created_at, i.updated_at, i.provider, i.kind, i.appid, i.openid, i.unionid, i.session_key, i.last_login_at, i.user_id"

// batchLogin is the fast path of Login on MySQL: one round trip that
// updates a known identity of a user who may log in (when its unionid is
// what the platform says) and reads its user with every identity; a banned
// user is refused. ok is false when the slow path
// must decide: an unknown identity (unknown is then true), a unionid learnt
// now, a user that is merged or deleted.
func (s *EntStore) batchLogin(ctx context.Context, in LoginInput, now time.Time) (res *LoginResult, ok, unknown bool, err error) {
	key := in.Key()
	set := []string{"last_login_at = ?", "updated_at = ?"}
	args := []any{now, now}
	if in.SessionKey != "" {
		set = append(set, "session_key = ?")
		args = append(args, s.sealKey(key, in.SessionKey))
	}
	if in.Kind != "" {
		set = append(set, "kind = ?")
		args = append(args, in.Kind)
	}
	where := "provider = ? AND appid = ? AND openid = ? AND user_id = @wxlogin_uid"
	args = append(args, key.Provider, key.AppID, key.OpenID)
	if in.UnionID != "" {
		where += " AND unionid = ?"
		args = append(args, in.UnionID)
	}
	// The update applies only to a user who may log in (a banned one is
	// refused with nothing written). The first statement finds them with a
	// plain read, NULL when there is none (the variable never keeps an
	// earlier login's value), so the batch locks no users row: the slow
	// path locks the user before its identities, the other order would
	// deadlock.
	query := "SELECT (SELECT u.id FROM identities k JOIN users u ON u.id = k.user_id " +
		"WHERE k.provider = ? AND k.appid = ? AND k.openid = ? " +
		"AND (u.status = 'active' OR (u.status = 'banned' AND u.banned_until IS NOT NULL AND u.banned_until <= ?))) INTO @wxlogin_uid;\n" +
		"UPDATE identities SET " + strings.Join(set, ", ") + " WHERE " + where + ";\n" +
		"SELECT " + loginColumns + " FROM identities k JOIN users u ON u.id = k.user_id JOIN identities i ON i.user_id = u.id " +
		"WHERE k.provider = ? AND k.appid = ? AND k.openid = ? ORDER BY i.id"
	args = append(args, key.Provider, key.AppID, key.OpenID)

	args = append([]any{key.Provider, key.AppID, key.OpenID, now}, args...)

	var u *ent.User
	err = s.batch.Run(ctx, query, args, func(rows *sql.Rows) error {
		for rows.Next() {
			var (
				uu                   ent.User
				phone, cc, banReason sql.NullString
				bannedUntil          sql.NullTime
				mergedInto           sql.NullInt64
				status               string
				id                   ent.Identity
				unionid              sql.NullString
				lastLogin            sql.NullTime
			)
			if err := rows.Scan(&uu.ID, &uu.CreatedAt, &uu.UpdatedAt, &uu.Nickname, &uu.AvatarURL, &phone, &cc,
				&status, &bannedUntil, &banReason, &mergedInto,
				&id.ID, &id.CreatedAt, &id.UpdatedAt, &id.Provider, &id.Kind, &id.Appid, &id.Openid, &unionid,
				&id.SessionKey, &lastLogin, &id.UserID); err != nil {
				return err
			}
			if u == nil {
				uu.Phone, uu.PhoneCountryCode = nullString(phone), nullString(cc)
				uu.Status = entuser.Status(status)
				uu.BanReason = banReason.String
				if bannedUntil.Valid {
					t := bannedUntil.Time.UTC()
					uu.BannedUntil = &t
				}
				if mergedInto.Valid {
					m := int(mergedInto.Int64)
					uu.MergedInto = &m
				}
				uu.CreatedAt, uu.UpdatedAt = uu.CreatedAt.UTC(), uu.UpdatedAt.UTC()
				u = &uu
			}
			id.Unionid = nullString(unionid)
			if lastLogin.Valid {
				t := lastLogin.Time.UTC()
				id.LastLoginAt = &t
			}
			id.CreatedAt, id.UpdatedAt = id.CreatedAt.UTC(), id.UpdatedAt.UTC()
			idc := id
			u.Edges.Identities = append(u.Edges.Identities, &idc)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, false, false, unavailable("login", err)
	}
	if u == nil {
		return nil, false, true, nil
	}
	if u.Status == entuser.StatusMerged || u.Status == entuser.StatusDeleted {
		return nil, false, false, nil
	}
	if err := refuseBanned(u, now); err != nil {
		return nil, false, false, err
	}
	ident := identityIn(u, key)
	if ident == nil || (in.UnionID != "" && (ident.Unionid == nil || *ident.Unionid != in.UnionID)) {
		return nil, false, false, nil // the update did not apply: the slow path links the unionid
	}
	s.openKeys(u.Edges.Identities...)
	return &LoginResult{User: u, Identity: ident}, true, false, nil
}

func nullString(n sql.NullString) *string {
	if !n.Valid {
		return nil
	}
	return &n.String
}

// batchCreate is the first login of a new person on MySQL, in one round
// trip: the user, the unionid's link and the identity in one transaction.
// ok is false when a unique key said a concurrent login (or a known
// unionid) got there first: the caller's transaction then decides, as for
// every other case it does not handle (an anonymous device).
func (s *EntStore) batchCreate(ctx context.Context, in LoginInput, now time.Time) (res *LoginResult, ok bool, err error) {
	if in.AnonymousOpenID != "" {
		return nil, false, nil
	}
	key := in.Key()
	nickname, avatar := "", ""
	if n, err := ValidateNickname(in.Nickname); in.Nickname != "" && err == nil {
		nickname = n
	}
	if a, err := ValidateAvatarURL(in.AvatarURL); in.AvatarURL != "" && err == nil {
		avatar = a
	}
	kind := orDefault(in.Kind, "miniprogram")
	sealed := s.sealKey(key, in.SessionKey)
	var unionid any
	query := "START TRANSACTION;\n" +
		"INSERT INTO users (created_at, updated_at, nickname, avatar_url) VALUES (?, ?, ?, ?);\n" +
		"SET @wxlogin_uid = LAST_INSERT_ID();\n"
	args := []any{now, now, nickname, avatar}
	if in.UnionID != "" {
		unionid = in.UnionID
		query += "INSERT INTO union_links (provider, unionid, user_id, created_at) VALUES (?, ?, @wxlogin_uid, ?);\n"
		args = append(args, in.Provider, in.UnionID, now)
	}
	query += "INSERT INTO identities (created_at, updated_at, provider, kind, appid, openid, unionid, session_key, last_login_at, user_id) " +
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, @wxlogin_uid);\n" +
		"COMMIT;\n" +
		"SELECT @wxlogin_uid, LAST_INSERT_ID()"
	args = append(args, now, now, key.Provider, kind, key.AppID, key.OpenID, unionid, sealed, now)
	var userID, identityID int
	err = s.batch.Run(ctx, query, args, func(rows *sql.Rows) error {
		if rows.Next() {
			return rows.Scan(&userID, &identityID)
		}
		return rows.Err()
	})
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1062 { // a unique key: someone got there first
		return nil, false, nil
	}
	if err != nil {
		return nil, false, unavailable("create", err)
	}
	if userID == 0 {
		return nil, false, errors.New("user: create: no id came back")
	}
	u := &ent.User{ID: userID, CreatedAt: now, UpdatedAt: now, Nickname: nickname, AvatarURL: avatar, Status: entuser.StatusActive}
	id := &ent.Identity{ID: identityID, CreatedAt: now, UpdatedAt: now, Provider: key.Provider, Kind: kind, Appid: key.AppID,
		Openid: key.OpenID, SessionKey: in.SessionKey, LastLoginAt: &now, UserID: userID}
	if in.UnionID != "" {
		uid := in.UnionID
		id.Unionid = &uid
	}
	u.Edges.Identities = []*ent.Identity{id}
	return &LoginResult{User: u, Identity: id, Created: true}, true, nil
}
