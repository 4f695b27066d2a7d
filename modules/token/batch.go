package token

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
)

// accessStatement makes a session's first access token without writing
// it: the token, its expiry, and the statement (with its arguments) that
// stores it, if the strategy stores access tokens at all.
type accessStatement func(row *ent.Session, now time.Time) (access string, exp time.Time, stmt string, args []any, err error)

// liveSession is what the session policy needs to know of a session.
type liveSession struct {
	id, client string
	created    time.Time
}

// batchIssue is issue in one round trip on MySQL: the new session (and,
// for the db strategy, its first access token) is written in a transaction
// and the user's live sessions are read after it, in one batch. The
// session policy then needs no lock: every login of the user computes the
// same sessions to end from the same order, so concurrent logins agree, and
// ending them (rare: a login beyond the limit) is one more trip.
func (s *sessions) batchIssue(ctx context.Context, subj Subject) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := s.opt.Now()
	sid := newSessionID()
	secret := newRefreshSecret(s.opt, sid)
	row := &ent.Session{ID: sid, UserID: subj.UserID, Provider: subj.provider(), Appid: subj.AppID, Openid: subj.OpenID,
		Client: subj.Client, Device: subj.Device, RefreshHash: hashHex(secret), RefreshExpiresAt: s.opt.newRefreshExpiry(now),
		LastSeenAt: &now, CreatedAt: now, UpdatedAt: now}
	access, exp, stmt, accessArgs, err := s.batchAccess(row, now)
	if err != nil {
		return Pair{}, err
	}
	query := insertSession
	args := []any{row.ID, now, now, row.Provider, row.Appid, row.Openid, row.Client, row.Device, now,
		row.RefreshHash, row.RefreshExpiresAt, row.UserID}
	if stmt != "" {
		query = "START TRANSACTION;\n" + insertSession + ";\n" + stmt + ";\nCOMMIT"
		args = append(args, accessArgs...)
	}
	query += ";\n" + selectLive
	args = append(args, row.UserID, now)
	var live []liveSession
	err = s.batch.Run(ctx, query, args, func(rows *sql.Rows) error {
		for rows.Next() {
			var l liveSession
			if err := rows.Scan(&l.id, &l.client, &l.created); err != nil {
				return err
			}
			live = append(live, l)
		}
		return rows.Err()
	})
	// Oldest first; among sessions of one instant, this login's own last:
	// it is the newest as far as this login knows. (Logins of one user at
	// different instants all see the same order, so they agree.)
	slices.SortStableFunc(live, func(a, b liveSession) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		switch {
		case a.id == sid && b.id != sid:
			return 1
		case b.id == sid && a.id != sid:
			return -1
		}
		return 0
	})
	if err != nil {
		return Pair{}, unavailable("store session", err)
	}
	pair := Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(sid, secret),
		RefreshExpiresAt: row.RefreshExpiresAt, SessionID: sid}
	victims := s.settle(live, subj)
	if len(victims) == 0 {
		return pair, nil
	}
	var ended []ending
	err = withTx(ctx, s.client, func(ctx context.Context, tx *ent.Client) (err error) {
		ended, err = s.endVictims(ctx, tx, victims, now)
		return err
	})
	if err != nil {
		// The login stands; the policy is applied again by the next login.
		s.opt.Logger.Warn("token: the session policy could not end sessions", zap.Error(err))
		return pair, nil
	}
	if err := s.announce(ctx, ended, now); err != nil {
		s.opt.Logger.Warn("token: sessions ended by a login were not announced", zap.Error(err))
	}
	return pair, nil
}

const insertSession = "INSERT INTO sessions (id, created_at, updated_at, provider, appid, openid, client, device, last_seen_at, " +
	"refresh_hash, refresh_expires_at, generation, prev_refresh_hash, refresh_sealed, user_id) " +
	"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '', ?)"

const selectLive = "SELECT id, client, created_at FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND refresh_expires_at > ? " +
	"ORDER BY created_at, id"

// settle names the sessions the policy ends, given the user's live sessions
// oldest first, the new one included: with SessionSinglePerClient the
// client's sessions but its newest, then the oldest of the others beyond
// SessionMax. Concurrent logins seeing the same sessions agree on it.
func (s *sessions) settle(live []liveSession, subj Subject) []ending {
	cfg := s.opt.Config
	replaced := ending{userID: subj.UserID, reason: ReasonReplaced}
	limited := ending{userID: subj.UserID, reason: ReasonSessionLimit}
	newest := ""
	if cfg.SessionSinglePerClient {
		for _, l := range live {
			if l.client == subj.Client {
				newest = l.id
			}
		}
	}
	keep := make([]string, 0, len(live))
	for _, l := range live {
		switch {
		case cfg.SessionSinglePerClient && l.client == subj.Client && l.id != newest:
			replaced.sids = append(replaced.sids, l.id)
		default:
			keep = append(keep, l.id)
		}
	}
	if cfg.SessionMax > 0 && len(keep) > cfg.SessionMax {
		limited.sids = keep[:len(keep)-cfg.SessionMax]
	}
	var out []ending
	for _, e := range []ending{replaced, limited} {
		if len(e.sids) > 0 {
			out = append(out, e)
		}
	}
	return out
}
