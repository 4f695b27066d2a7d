package token

import (
	"context"
	"fmt"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/accesstoken"
	"github.com/wxlogin/wxlogin/ent/revocation"
	"github.com/wxlogin/wxlogin/ent/session"
)

// DB is the "db" strategy: an access token is 32 random bytes (base64url)
// of which the database keeps only the SHA-256, with its expiry and session.
// Revoking a session deletes its access tokens and writes a revocation row,
// which other instances' caches read through a [PollFeed].
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
	return &DB{client: client, opt: o, sessions: sessions{client: client, opt: o}}, nil
}

// Name is "db".
func (d *DB) Name() string { return NameDB }

// String names the strategy.
func (d *DB) String() string { return "token.DB" }

// Issue starts a session and stores its first access token.
func (d *DB) Issue(ctx context.Context, subj Subject) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := d.opt.Now()
	var pair Pair
	err := withTx(ctx, d.client, func(tx *ent.Client) error {
		row, refresh, err := d.sessions.create(ctx, tx, subj, now)
		if err != nil {
			return err
		}
		access, exp, err := d.storeAccess(ctx, tx, row, now)
		if err != nil {
			return err
		}
		pair = Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refresh,
			RefreshExpiresAt: row.RefreshExpiresAt, SessionID: row.ID}
		return nil
	})
	return pair, err
}

func (d *DB) storeAccess(ctx context.Context, c *ent.Client, row *ent.Session, now time.Time) (string, time.Time, error) {
	access := newSecret()
	exp := expiry(now, d.opt.Config.TTL)
	err := c.AccessToken.Create().
		SetTokenHash(hashHex(access)).
		SetSessionID(row.ID).
		SetUserID(row.UserID).
		SetExpiresAt(exp).
		SetCreatedAt(now.UTC()).
		Exec(ctx)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: store access token: %w", err)
	}
	return access, exp, nil
}

// verifiedRow is what Verify reads: the token's row joined with its session.
type verifiedRow struct {
	UserID    int       `sql:"user_id"`
	SessionID string    `sql:"session_id"`
	ExpiresAt time.Time `sql:"expires_at"`
	Provider  string    `sql:"provider"`
	AppID     string    `sql:"appid"`
	OpenID    string    `sql:"openid"`
}

// withLiveSession joins the token's session, which must not be revoked, and
// selects its appid and openid: Verify is one query.
func withLiveSession(s *entsql.Selector) {
	t := entsql.Table(session.Table)
	s.Join(t).On(s.C(accesstoken.FieldSessionID), t.C(session.FieldID))
	s.AppendSelect(entsql.As(t.C(session.FieldProvider), "provider"),
		entsql.As(t.C(session.FieldAppid), "appid"), entsql.As(t.C(session.FieldOpenid), "openid"))
	s.Where(entsql.IsNull(t.C(session.FieldRevokedAt)))
}

// Verify looks the token's hash up.
func (d *DB) Verify(ctx context.Context, accessToken string) (Principal, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if !isOpaque(accessToken) {
		return Principal{}, unauthenticated("malformed")
	}
	now := d.opt.Now()
	hash := hashHex(accessToken)
	var rows []verifiedRow
	err := d.client.AccessToken.Query().
		Where(accesstoken.TokenHash(hash), accesstoken.ExpiresAtGT(now.UTC()), withLiveSession).
		Select(accesstoken.FieldUserID, accesstoken.FieldSessionID, accesstoken.FieldExpiresAt).
		Scan(ctx, &rows)
	if err != nil {
		return Principal{}, fmt.Errorf("token: look the access token up: %w", err)
	}
	if len(rows) != 1 {
		return Principal{}, unauthenticated("unknown, expired or revoked")
	}
	r := rows[0]
	return Principal{UserID: r.UserID, Provider: r.Provider, AppID: r.AppID, OpenID: r.OpenID, SessionID: r.SessionID,
		TokenID: tokenIDOf(hash), ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// Refresh rotates the refresh token and stores a new access token.
func (d *DB) Refresh(ctx context.Context, refreshToken string) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := d.opt.Now()
	var access string
	var exp time.Time
	rot, err := d.sessions.rotate(ctx, refreshToken, now,
		func(ctx context.Context, tx *ent.Client, row *ent.Session) (err error) {
			access, exp, err = d.storeAccess(ctx, tx, row, now)
			return err
		}, d.revoke)
	if err != nil {
		return Pair{}, err
	}
	return Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: rot.refresh,
		RefreshExpiresAt: rot.session.RefreshExpiresAt, SessionID: rot.session.ID}, nil
}

// Revoke ends p's session.
func (d *DB) Revoke(ctx context.Context, p Principal) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if p.SessionID == "" {
		return fmt.Errorf("token: revoke: the principal names no session")
	}
	return d.revoke(ctx, p.UserID, []string{p.SessionID}, reasonLogout)
}

// RevokeAll ends every session of the user.
func (d *DB) RevokeAll(ctx context.Context, userID int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := d.opt.Now()
	var sids []string
	err := withTx(ctx, d.client, func(tx *ent.Client) error {
		var err error
		if sids, err = liveSessions(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := markRevoked(ctx, tx, userID, sids, reasonLogoutAll, now); err != nil {
			return err
		}
		if _, err := tx.AccessToken.Delete().Where(accesstoken.UserID(userID)).Exec(ctx); err != nil {
			return fmt.Errorf("token: delete access tokens: %w", err)
		}
		return d.record(ctx, tx, userID, sids, now)
	})
	if err != nil {
		return err
	}
	return d.opt.Feed.Publish(ctx, Revoked{UserID: userID, SessionIDs: sids, AllSessions: true})
}

// revoke marks sessions revoked, deletes their access tokens, writes the
// revocation rows and announces it.
func (d *DB) revoke(ctx context.Context, userID int, sids []string, reason string) error {
	now := d.opt.Now()
	err := withTx(ctx, d.client, func(tx *ent.Client) error {
		// Only sessions of this user: a principal cannot name another's.
		owned, err := tx.Session.Query().Where(session.IDIn(sids...), session.UserID(userID)).IDs(ctx)
		if err != nil {
			return fmt.Errorf("token: read sessions: %w", err)
		}
		sids = owned
		if _, err := markRevoked(ctx, tx, userID, sids, reason, now); err != nil {
			return err
		}
		if _, err := tx.AccessToken.Delete().Where(accesstoken.SessionIDIn(sids...), accesstoken.UserID(userID)).Exec(ctx); err != nil {
			return fmt.Errorf("token: delete access tokens: %w", err)
		}
		return d.record(ctx, tx, userID, sids, now)
	})
	if err != nil || len(sids) == 0 {
		return err
	}
	return d.opt.Feed.Publish(ctx, Revoked{UserID: userID, SessionIDs: sids})
}

// record writes one revocation row per session, kept as long as an access
// token issued before now could live.
func (d *DB) record(ctx context.Context, tx *ent.Client, userID int, sids []string, now time.Time) error {
	if len(sids) == 0 {
		return nil
	}
	return recordRevocations(ctx, tx, userID, sids, expiry(now, d.opt.Config.TTL), now)
}

func recordRevocations(ctx context.Context, c *ent.Client, userID int, sids []string, until, now time.Time) error {
	builders := make([]*ent.RevocationCreate, len(sids))
	for i, sid := range sids {
		builders[i] = c.Revocation.Create().SetSessionID(sid).SetUserID(userID).
			SetExpiresAt(until.Add(time.Second)).SetCreatedAt(now.UTC())
	}
	if err := c.Revocation.CreateBulk(builders...).Exec(ctx); err != nil {
		return fmt.Errorf("token: record revocation: %w", err)
	}
	return nil
}

// revoked reports whether a live revocation row names the session: the
// jwt strategy's deny list without Redis.
func revokedInDB(ctx context.Context, c *ent.Client, sid string, now time.Time) (bool, error) {
	ok, err := c.Revocation.Query().Where(revocation.SessionID(sid), revocation.ExpiresAtGT(now.UTC())).Exist(ctx)
	if err != nil {
		return false, fmt.Errorf("token: read the deny list: %w", err)
	}
	return ok, nil
}
