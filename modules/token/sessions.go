package token

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/predicate"
	"github.com/wxlogin/wxlogin/ent/session"
	"github.com/wxlogin/wxlogin/ent/user"
	"github.com/wxlogin/wxlogin/modules/database"
)

// sessions keeps the sessions (refresh families) of the jwt and db
// strategies in the database; the strategies plug in how an access token is
// made and what else ending a session takes.
type sessions struct {
	client *ent.Client
	opt    Options
	// access makes the access token of a session that is being created or
	// refreshed, inside that transaction.
	access func(ctx context.Context, tx *ent.Client, row *ent.Session, now time.Time) (string, time.Time, error)
	// end runs in the transaction that marks sessions ended, with the ids
	// it ended: the strategy records what verification needs (revocation
	// rows, the deny list).
	end func(ctx context.Context, tx *ent.Client, e ending, now time.Time) error
	// batch, when set (MySQL), lets issue take one round trip;
	// batchAccess then makes the access token (see batchIssue).
	batch       *database.Batch
	batchAccess accessStatement
}

// ending is what one revocation ended.
type ending struct {
	userID int
	sids   []string
	reason Reason
	all    bool
}

// issue starts a session for subj, applying the session policy to the
// user's other sessions in the same transaction. The user's row is locked
// for the transaction, so concurrent logins of one user see each other.
func (s *sessions) issue(ctx context.Context, subj Subject) (Pair, error) {
	if s.batch != nil && s.batchAccess != nil {
		return s.batchIssue(ctx, subj)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := s.opt.Now()
	var pair Pair
	var ended []ending
	err := withTx(ctx, s.client, func(ctx context.Context, tx *ent.Client) error {
		if err := lockUser(ctx, tx, subj.UserID); err != nil {
			return err
		}
		victims, err := s.policy(ctx, tx, subj, now)
		if err != nil {
			return err
		}
		if ended, err = s.endVictims(ctx, tx, victims, now); err != nil {
			return err
		}
		sid := newSessionID()
		secret := newRefreshSecret(s.opt, sid)
		row, err := tx.Session.Create().
			SetID(sid).
			SetUserID(subj.UserID).
			SetProvider(subj.provider()).
			SetAppid(subj.AppID).
			SetOpenid(subj.OpenID).
			SetClient(subj.Client).
			SetDevice(subj.Device).
			SetRefreshHash(hashHex(secret)).
			SetRefreshExpiresAt(s.opt.newRefreshExpiry(now)).
			SetLastSeenAt(now).
			SetCreatedAt(now).
			SetUpdatedAt(now).
			Save(ctx)
		if err != nil {
			return unavailable("store session", err)
		}
		access, exp, err := s.access(ctx, tx, row, now)
		if err != nil {
			return err
		}
		pair = Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(sid, secret),
			RefreshExpiresAt: row.RefreshExpiresAt, SessionID: sid}
		return nil
	})
	if err != nil {
		return Pair{}, err
	}
	// The login stands; a revocation that other instances miss now is
	// caught by their feed's health (see Feed), so it is only logged.
	if err := s.announce(ctx, ended, now); err != nil {
		s.opt.Logger.Warn("token: sessions ended by a login were not announced", zap.Error(err))
	}
	return pair, nil
}

// policy names the sessions a login of subj ends: with
// SessionSinglePerClient every live session of the same client, then the
// oldest ones beyond SessionMax.
func (s *sessions) policy(ctx context.Context, tx *ent.Client, subj Subject, now time.Time) ([]ending, error) {
	cfg := s.opt.Config
	if !cfg.SessionSinglePerClient && cfg.SessionMax <= 0 {
		return nil, nil
	}
	live, err := tx.Session.Query().
		Where(session.UserID(subj.UserID), session.RevokedAtIsNil(), session.RefreshExpiresAtGT(now)).
		Order(ent.Asc(session.FieldCreatedAt), ent.Asc(session.FieldID)).
		Select(session.FieldID, session.FieldClient).
		All(ctx)
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	replaced := ending{userID: subj.UserID, reason: ReasonReplaced}
	limited := ending{userID: subj.UserID, reason: ReasonSessionLimit}
	keep := make([]string, 0, len(live))
	for _, r := range live {
		if cfg.SessionSinglePerClient && r.Client == subj.Client {
			replaced.sids = append(replaced.sids, r.ID)
		} else {
			keep = append(keep, r.ID)
		}
	}
	if cfg.SessionMax > 0 && len(keep)+1 > cfg.SessionMax {
		limited.sids = keep[:len(keep)+1-cfg.SessionMax]
	}
	var out []ending
	for _, e := range []ending{replaced, limited} {
		if len(e.sids) > 0 {
			out = append(out, e)
		}
	}
	return out, nil
}

// lockUser locks the user's row until the transaction ends, so that logins
// of one user apply the session policy one after the other. SQLite needs no
// lock: the project's SQLite has a single connection.
func lockUser(ctx context.Context, tx *ent.Client, userID int) error {
	_, err := tx.User.Query().Where(user.ID(userID), func(s *entsql.Selector) {
		if s.Dialect() != dialect.SQLite {
			s.ForUpdate()
		}
	}).IDs(ctx)
	if err != nil {
		return unavailable("lock the user's sessions", err)
	}
	return nil
}

// endVictims ends the sessions a policy chose, returning those it ended.
func (s *sessions) endVictims(ctx context.Context, tx *ent.Client, victims []ending, now time.Time) ([]ending, error) {
	var ended []ending
	for _, v := range victims {
		e, err := s.endTx(ctx, tx, v, now, session.IDIn(v.sids...))
		if err != nil {
			return nil, err
		}
		if len(e.sids) > 0 {
			ended = append(ended, e)
		}
	}
	return ended, nil
}

// endTx marks the live sessions of e.userID that match where as ended with
// e.reason and lets the strategy record it; it returns what it ended.
func (s *sessions) endTx(ctx context.Context, tx *ent.Client, e ending, now time.Time, where ...predicate.Session) (ending, error) {
	ids, err := tx.Session.Query().
		Where(append(where, session.UserID(e.userID), session.RevokedAtIsNil())...).
		IDs(ctx)
	if err != nil {
		return e, unavailable("read sessions", err)
	}
	e.sids = ids
	if len(ids) == 0 {
		return e, nil
	}
	_, err = tx.Session.Update().
		Where(session.IDIn(ids...), session.RevokedAtIsNil()).
		SetRevokedAt(now).
		SetRevokeReason(string(e.reason)).
		SetUpdatedAt(now).
		Save(ctx)
	if err != nil {
		return e, unavailable("revoke sessions", err)
	}
	if s.end != nil {
		if err := s.end(ctx, tx, e, now); err != nil {
			return e, err
		}
	}
	return e, nil
}

// announce tells the caches (and the jwt revocation sets) of every
// instance what ended.
func (s *sessions) announce(ctx context.Context, ended []ending, now time.Time) error {
	for _, e := range ended {
		err := s.opt.Feed.Publish(ctx, Revoked{UserID: e.userID, SessionIDs: e.sids, AllSessions: e.all,
			Reason: e.reason, Until: expiry(now, s.opt.Config.TTL)})
		if err != nil {
			return err
		}
	}
	return nil
}

// revoke ends sessions of a user: those named (liveOnly: only sessions
// still live, for RevokeSession), or every one when sids is nil. It
// returns how many it ended.
func (s *sessions) revoke(ctx context.Context, userID int, sids []string, reason Reason, liveOnly bool) (int, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := s.opt.Now()
	e := ending{userID: userID, reason: revokeReason(reason), all: sids == nil}
	var where []predicate.Session
	if sids != nil {
		if len(sids) == 0 {
			return 0, nil
		}
		where = append(where, session.IDIn(sids...))
	}
	if liveOnly {
		where = append(where, session.RefreshExpiresAtGT(now))
	}
	err := withTx(ctx, s.client, func(ctx context.Context, tx *ent.Client) (err error) {
		e, err = s.endTx(ctx, tx, e, now, where...)
		return err
	})
	if err != nil {
		return 0, err
	}
	if len(e.sids) == 0 {
		return 0, nil
	}
	return len(e.sids), s.announce(ctx, []ending{e}, now)
}

// revokeSession is RevokeSession of the jwt and db strategies.
func (s *sessions) revokeSession(ctx context.Context, userID int, sid string, reason Reason) error {
	if !isBase64URL(sid, sessionLen) {
		return ErrSessionNotFound
	}
	n, err := s.revoke(ctx, userID, []string{sid}, reason, true)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrSessionNotFound
	}
	return nil
}

// list is Sessions of the jwt and db strategies.
func (s *sessions) list(ctx context.Context, userID int) ([]SessionInfo, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, err := s.client.Session.Query().
		Where(session.UserID(userID), session.RevokedAtIsNil(), session.RefreshExpiresAtGT(s.opt.Now())).
		Select(session.FieldID, session.FieldClient, session.FieldDevice, session.FieldProvider, session.FieldAppid,
			session.FieldCreatedAt, session.FieldLastSeenAt, session.FieldRefreshExpiresAt).
		All(ctx)
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	out := make([]SessionInfo, len(rows))
	for i, r := range rows {
		seen := r.CreatedAt // a session from before last_seen_at was kept
		if r.LastSeenAt != nil {
			seen = *r.LastSeenAt
		}
		out[i] = SessionInfo{ID: r.ID, Client: r.Client, Device: r.Device, Provider: r.Provider, AppID: r.Appid,
			CreatedAt: r.CreatedAt.UTC(), LastSeenAt: seen.UTC(), ExpiresAt: r.RefreshExpiresAt.UTC()}
	}
	// A user has a handful of sessions: most recently seen first, here.
	slices.SortStableFunc(out, func(a, b SessionInfo) int {
		if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
			return c
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return out, nil
}

// refresh spends refresh token tok. Of concurrent refreshes with one token
// exactly one rotates it (a conditional UPDATE); the others, like any
// caller within the grace window after it, get a new access token and the
// refresh token that replaced theirs. Later, presenting a replaced token is
// a reuse and revokes the session.
func (s *sessions) refresh(ctx context.Context, tok string) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	sid, secret, ok := parseRefresh(s.opt, tok)
	if !ok || len(sid) != sessionLen {
		return Pair{}, invalidRefresh(ReasonInvalid, "malformed")
	}
	hash := hashHex(secret)
	for range 3 {
		now := s.opt.Now()
		row, err := s.client.Session.Get(ctx, sid)
		if ent.IsNotFound(err) {
			return Pair{}, invalidRefresh(ReasonInvalid, "unknown session")
		}
		if err != nil {
			return Pair{}, unavailable("read session", err)
		}
		switch {
		case row.RevokedAt != nil:
			return Pair{}, invalidRefresh(storedReason(row.RevokeReason), "session ended")
		case !now.Before(row.RefreshExpiresAt):
			return Pair{}, invalidRefresh(ReasonExpired, "session expired")
		case same(row.RefreshHash, hash):
			pair, won, err := s.rotate(ctx, row, hash, now)
			if err != nil || won {
				return pair, err
			}
			// Lost a race with another refresh: look again.
		case same(row.PrevRefreshHash, hash) && row.RotatedAt != nil && s.opt.inGrace(*row.RotatedAt, now):
			return s.grace(ctx, row, now)
		default:
			if _, err := s.revoke(ctx, row.UserID, []string{row.ID}, ReasonRevoked, false); err != nil {
				return Pair{}, err
			}
			s.opt.Logger.Warn("token: a spent refresh token was presented again; its session is revoked",
				zap.String("session_id", row.ID), zap.Int("user_id", row.UserID), zap.Int("generation", row.Generation))
			return Pair{}, fmt.Errorf("%w (session %s)", ErrRefreshReused, row.ID)
		}
	}
	return Pair{}, invalidRefresh("", "changed concurrently")
}

func same(stored, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(stored), []byte(hash)) == 1
}

// rotate replaces the refresh token whose hash is hash; won is false when
// another refresh replaced it first.
func (s *sessions) rotate(ctx context.Context, row *ent.Session, hash string, now time.Time) (pair Pair, won bool, err error) {
	next := newRefreshSecret(s.opt, row.ID)
	rexp := s.opt.rotatedRefreshExpiry(row.CreatedAt, now)
	err = withTx(ctx, s.client, func(ctx context.Context, tx *ent.Client) error {
		n, err := tx.Session.Update().
			Where(session.ID(row.ID), session.RefreshHash(hash), session.RevokedAtIsNil(), session.RefreshExpiresAtGT(now)).
			SetRefreshHash(hashHex(next)).
			SetPrevRefreshHash(hash).
			SetRotatedAt(now).
			SetRefreshSealed(sealRefresh(s.opt, row.ID, next)).
			SetRefreshExpiresAt(rexp).
			SetLastSeenAt(now).
			AddGeneration(1).
			SetUpdatedAt(now).
			Save(ctx)
		if err != nil {
			return unavailable("rotate refresh token", err)
		}
		if n != 1 {
			return nil
		}
		won = true
		access, exp, err := s.access(ctx, tx, row, now)
		if err != nil {
			return err
		}
		pair = Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(row.ID, next),
			RefreshExpiresAt: rexp, SessionID: row.ID}
		return nil
	})
	if err != nil {
		return Pair{}, false, err
	}
	return pair, won, nil
}

// grace answers a refresh with the token the last rotation replaced: a new
// access token and the current refresh token, rotating nothing.
func (s *sessions) grace(ctx context.Context, row *ent.Session, now time.Time) (Pair, error) {
	current, ok := openRefresh(s.opt, row.ID, row.RefreshSealed)
	if !ok {
		// Sealed under a secret no longer configured: nothing to hand out.
		return Pair{}, invalidRefresh("", "replaced refresh token, current one not recoverable")
	}
	var pair Pair
	err := withTx(ctx, s.client, func(ctx context.Context, tx *ent.Client) error {
		access, exp, err := s.access(ctx, tx, row, now)
		if err != nil {
			return err
		}
		pair = Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(row.ID, current),
			RefreshExpiresAt: row.RefreshExpiresAt.UTC(), SessionID: row.ID}
		return nil
	})
	return pair, err
}

// withTx runs fn in a transaction, committed when fn returns nil. fn's
// context carries the transaction (ent.TxFromContext), so that a deny list
// in the same database writes in it, however it is wrapped.
func withTx(ctx context.Context, client *ent.Client, fn func(ctx context.Context, tx *ent.Client) error) error {
	tx, err := client.Tx(ctx)
	if err != nil {
		return unavailable("begin transaction", err)
	}
	if err := fn(ent.NewTxContext(ctx, tx), tx.Client()); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return unavailable("commit", err)
	}
	return nil
}
