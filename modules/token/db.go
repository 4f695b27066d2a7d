package token

import (
	"context"
	"database/sql"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/accesstoken"
	"github.com/wxlogin/wxlogin/ent/revocation"
	"github.com/wxlogin/wxlogin/ent/session"
)

// DB is the "db" strategy: an access token is an opaque sealed value (see
// newOpaque) of which the database keeps only the SHA-256, with its expiry
// and session. Revoking a session marks it revoked with its reason (the
// access-token rows stay until they expire, so that Verify tells why in
// the same single query) and writes a revocation row, which other
// instances' caches read through a [PollFeed].
type DB struct {
	client   *ent.Client
	opt      Options
	sessions sessions
}

var _ Strategy = (*DB)(nil)

// NewDB returns the db strategy on client.
func NewDB(client *ent.Client, o Options) (*DB, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	o = o.complete()
	d := &DB{client: client, opt: o}
	d.sessions = sessions{client: client, opt: o, access: d.storeAccess, batch: o.Batch,
		batchAccess: func(row *ent.Session, now time.Time) (string, time.Time, string, []any, error) {
			exp := expiry(now, o.Config.TTL)
			access := newOpaque(o, row.UserID, exp)
			return access, exp, "INSERT INTO access_tokens (token_hash, session_id, user_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
				[]any{hashHex(access), row.ID, row.UserID, exp, now}, nil
		},
		end: func(ctx context.Context, tx *ent.Client, e ending, now time.Time) error {
			return recordRevocations(ctx, tx, e.userID, e.sids, e.reason, expiry(now, o.Config.TTL), now)
		}}
	return d, nil
}

// Name is "db".
func (d *DB) Name() string { return NameDB }

// String names the strategy.
func (d *DB) String() string { return "token.DB" }

// Issue starts a session and stores its first access token.
func (d *DB) Issue(ctx context.Context, subj Subject) (Pair, error) {
	return d.sessions.issue(ctx, subj)
}

func (d *DB) storeAccess(ctx context.Context, c *ent.Client, row *ent.Session, now time.Time) (string, time.Time, error) {
	exp := expiry(now, d.opt.Config.TTL)
	access := newOpaque(d.opt, row.UserID, exp)
	err := c.AccessToken.Create().
		SetTokenHash(hashHex(access)).
		SetSessionID(row.ID).
		SetUserID(row.UserID).
		SetExpiresAt(exp).
		SetCreatedAt(now).
		Exec(ctx)
	if err != nil {
		return "", time.Time{}, unavailable("store access token", err)
	}
	return access, exp, nil
}

// verifiedRow is what Verify reads: the token's row joined with its session.
type verifiedRow struct {
	UserID       int            `sql:"user_id"`
	SessionID    string         `sql:"session_id"`
	ExpiresAt    time.Time      `sql:"expires_at"`
	Provider     string         `sql:"provider"`
	AppID        string         `sql:"appid"`
	OpenID       string         `sql:"openid"`
	RevokedAt    sql.NullTime   `sql:"revoked_at"`
	RevokeReason sql.NullString `sql:"revoke_reason"`
}

// withSession joins the token's session and selects its identity and its
// revocation: Verify is one query whatever the answer.
func withSession(s *entsql.Selector) {
	t := entsql.Table(session.Table)
	s.Join(t).On(s.C(accesstoken.FieldSessionID), t.C(session.FieldID))
	s.AppendSelect(entsql.As(t.C(session.FieldProvider), "provider"),
		entsql.As(t.C(session.FieldAppid), "appid"), entsql.As(t.C(session.FieldOpenid), "openid"),
		entsql.As(t.C(session.FieldRevokedAt), "revoked_at"), entsql.As(t.C(session.FieldRevokeReason), "revoke_reason"))
}

// Verify opens the token (a forged or expired one is refused without a
// query), then looks its hash up.
func (d *DB) Verify(ctx context.Context, accessToken string) (Principal, error) {
	uid, exp, ok := parseOpaque(d.opt, accessToken)
	if !ok {
		return Principal{}, unauthenticated(ReasonInvalid, "malformed or forged")
	}
	now := d.opt.Now()
	if !now.Before(exp) {
		return Principal{}, unauthenticated(ReasonExpired, "expired")
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	hash := hashHex(accessToken)
	var rows []verifiedRow
	err := d.client.AccessToken.Query().
		Where(accesstoken.TokenHash(hash), withSession).
		Select(accesstoken.FieldUserID, accesstoken.FieldSessionID, accesstoken.FieldExpiresAt).
		Scan(ctx, &rows)
	if err != nil {
		return Principal{}, unavailable("look the access token up", err)
	}
	if len(rows) != 1 || rows[0].UserID != uid {
		return Principal{}, unauthenticated(ReasonInvalid, "unknown")
	}
	r := rows[0]
	if r.RevokedAt.Valid {
		return Principal{}, unauthenticated(storedReason(r.RevokeReason.String), "session ended")
	}
	if !now.Before(r.ExpiresAt) {
		return Principal{}, unauthenticated(ReasonExpired, "expired")
	}
	return Principal{UserID: r.UserID, Provider: r.Provider, AppID: r.AppID, OpenID: r.OpenID, SessionID: r.SessionID,
		TokenID: tokenIDOf(hash), ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// Refresh rotates the refresh token and stores a new access token.
func (d *DB) Refresh(ctx context.Context, refreshToken string) (Pair, error) {
	return d.sessions.refresh(ctx, refreshToken)
}

// Revoke logs p's session out.
func (d *DB) Revoke(ctx context.Context, p Principal) error {
	if p.SessionID == "" {
		return errConfig("revoke: the principal names no session")
	}
	_, err := d.sessions.revoke(ctx, p.UserID, []string{p.SessionID}, ReasonLoggedOut, false)
	return err
}

// RevokeSession ends one live session of the user.
func (d *DB) RevokeSession(ctx context.Context, userID int, sessionID string, reason Reason) error {
	return d.sessions.revokeSession(ctx, userID, sessionID, reason)
}

// RevokeAll ends every session of the user.
func (d *DB) RevokeAll(ctx context.Context, userID int, reason Reason) error {
	_, err := d.sessions.revoke(ctx, userID, nil, reason, false)
	return err
}

// Sessions lists the user's live sessions.
func (d *DB) Sessions(ctx context.Context, userID int) ([]SessionInfo, error) {
	return d.sessions.list(ctx, userID)
}

// recordRevocations writes one revocation row per session, kept until
// until (when the last access token issued before now expires).
func recordRevocations(ctx context.Context, c *ent.Client, userID int, sids []string, reason Reason, until, now time.Time) error {
	if len(sids) == 0 {
		return nil
	}
	builders := make([]*ent.RevocationCreate, len(sids))
	for i, sid := range sids {
		builders[i] = c.Revocation.Create().SetSessionID(sid).SetUserID(userID).SetReason(string(reason)).
			SetExpiresAt(until.Add(time.Second)).SetCreatedAt(now.UTC())
	}
	if err := c.Revocation.CreateBulk(builders...).Exec(ctx); err != nil {
		return unavailable("record revocation", err)
	}
	return nil
}

// deniedInDB reads the revocation rows of a session still in force: the
// jwt strategy's deny list without Redis.
func deniedInDB(ctx context.Context, c *ent.Client, sid string, now time.Time) (Reason, bool, error) {
	row, err := c.Revocation.Query().
		Where(revocation.SessionID(sid), revocation.ExpiresAtGT(now.UTC())).
		Order(ent.Desc(revocation.FieldID)).
		First(ctx)
	if ent.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("read the deny list", err)
	}
	return storedReason(row.Reason), true, nil
}
