package token

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/session"
)

// Revoke reasons kept in the session row.
const (
	reasonLogout    = "logout"
	reasonLogoutAll = "logout_all"
	reasonReuse     = "refresh_reuse"
)

// sessions keeps the refresh families of the jwt and db strategies in the
// database.
type sessions struct {
	client *ent.Client
	opt    Options
}

// create stores a new session through c (a client or a transaction's) and
// returns its refresh token.
func (s *sessions) create(ctx context.Context, c *ent.Client, subj Subject, now time.Time) (*ent.Session, string, error) {
	sid := newSessionID()
	secret := newRefreshSecret(s.opt, sid)
	row, err := c.Session.Create().
		SetID(sid).
		SetUserID(subj.UserID).
		SetProvider(subj.provider()).
		SetAppid(subj.AppID).
		SetOpenid(subj.OpenID).
		SetRefreshHash(hashHex(secret)).
		SetRefreshExpiresAt(expiry(now, s.opt.Config.RefreshTTL)).
		SetCreatedAt(now.UTC()).
		SetUpdatedAt(now.UTC()).
		Save(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("token: store session: %w", err)
	}
	return row, refreshToken(row.ID, secret), nil
}

// rotation is the outcome of a successful rotate.
type rotation struct {
	session *ent.Session
	refresh string
}

// rotate spends refresh token tok. The swap of the refresh hash is one
// conditional UPDATE, so that of two concurrent refreshes with one token
// exactly one wins; the loser, like any later replay, finds another hash in
// a live family and revokes it through revoke. issue, when set, runs in the
// rotation's transaction (the db strategy stores the new access token there).
func (s *sessions) rotate(ctx context.Context, tok string, now time.Time,
	issue func(ctx context.Context, c *ent.Client, row *ent.Session) error,
	revoke func(ctx context.Context, userID int, sids []string, reason string) error,
) (rotation, error) {
	sid, secret, ok := parseRefresh(s.opt, tok)
	if !ok {
		return rotation{}, invalidRefresh("malformed")
	}
	oldHash := hashHex(secret)
	row, err := s.client.Session.Get(ctx, sid)
	if ent.IsNotFound(err) {
		return rotation{}, invalidRefresh("unknown session")
	}
	if err != nil {
		return rotation{}, fmt.Errorf("token: read session: %w", err)
	}
	if err := s.check(ctx, row, oldHash, now, revoke); err != nil {
		return rotation{}, err
	}

	next := newRefreshSecret(s.opt, sid)
	rexp := expiry(now, s.opt.Config.RefreshTTL)
	var won bool
	err = withTx(ctx, s.client, func(tx *ent.Client) error {
		n, err := tx.Session.Update().
			Where(session.ID(sid), session.RefreshHash(oldHash), session.RevokedAtIsNil(), session.RefreshExpiresAtGT(now.UTC())).
			SetRefreshHash(hashHex(next)).
			SetRefreshExpiresAt(rexp).
			AddGeneration(1).
			SetUpdatedAt(now.UTC()).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("token: rotate refresh token: %w", err)
		}
		if n != 1 {
			return nil // lost a race: classified below, outside the transaction
		}
		won = true
		if issue != nil {
			return issue(ctx, tx, row)
		}
		return nil
	})
	if err != nil {
		return rotation{}, err
	}
	if !won {
		row, err := s.client.Session.Get(ctx, sid)
		if ent.IsNotFound(err) {
			return rotation{}, invalidRefresh("unknown session")
		}
		if err != nil {
			return rotation{}, fmt.Errorf("token: read session: %w", err)
		}
		if err := s.check(ctx, row, oldHash, now, revoke); err != nil {
			return rotation{}, err
		}
		return rotation{}, invalidRefresh("changed concurrently")
	}
	row.RefreshExpiresAt = rexp
	return rotation{session: row, refresh: refreshToken(sid, next)}, nil
}

// check classifies a refresh attempt against the stored session; a hash
// mismatch on a live family is a reuse, which revokes the family.
func (s *sessions) check(ctx context.Context, row *ent.Session, hash string, now time.Time,
	revoke func(ctx context.Context, userID int, sids []string, reason string) error,
) error {
	if row.RevokedAt != nil {
		return invalidRefresh("session revoked")
	}
	if !now.Before(row.RefreshExpiresAt) {
		return invalidRefresh("expired")
	}
	if subtle.ConstantTimeCompare([]byte(row.RefreshHash), []byte(hash)) != 1 {
		if err := revoke(ctx, row.UserID, []string{row.ID}, reasonReuse); err != nil {
			return fmt.Errorf("token: revoke a session whose refresh token was reused: %w", err)
		}
		s.opt.Logger.Warn("token: a spent refresh token was presented again; its session is revoked",
			zap.String("session_id", row.ID), zap.Int("user_id", row.UserID), zap.Int("generation", row.Generation))
		return fmt.Errorf("%w (session %s)", ErrRefreshReused, row.ID)
	}
	return nil
}

// markRevoked marks live sessions revoked through c and returns how many.
func markRevoked(ctx context.Context, c *ent.Client, userID int, sids []string, reason string, now time.Time) (int, error) {
	n, err := c.Session.Update().
		Where(session.IDIn(sids...), session.UserID(userID), session.RevokedAtIsNil()).
		SetRevokedAt(now.UTC()).
		SetRevokeReason(reason).
		SetUpdatedAt(now.UTC()).
		Save(ctx)
	if err != nil {
		return 0, fmt.Errorf("token: revoke session: %w", err)
	}
	return n, nil
}

// liveSessions lists the sessions of a user not revoked yet.
func liveSessions(ctx context.Context, c *ent.Client, userID int) ([]string, error) {
	ids, err := c.Session.Query().Where(session.UserID(userID), session.RevokedAtIsNil()).IDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("token: list sessions: %w", err)
	}
	return ids, nil
}

// withTx runs fn in a transaction, committed when fn returns nil.
func withTx(ctx context.Context, client *ent.Client, fn func(tx *ent.Client) error) error {
	tx, err := client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("token: begin transaction: %w", err)
	}
	if err := fn(tx.Client()); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("token: commit: %w", err)
	}
	return nil
}
