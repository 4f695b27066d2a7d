package token

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxlogin/wxlogin/ent"
)

// BulkIssuer starts many sessions at once, without the session policy: for
// imports, seeding and benchmarks. [JWT], [DB] and [Redis] implement it.
type BulkIssuer interface {
	IssueMany(ctx context.Context, subjects []Subject) ([]Pair, error)
}

var (
	_ BulkIssuer = (*JWT)(nil)
	_ BulkIssuer = (*DB)(nil)
	_ BulkIssuer = (*Redis)(nil)
)

// bulkBatch is how many sessions one statement or pipeline carries.
const bulkBatch = 1000

// issueMany inserts the sessions in batches; access makes each access token
// and, for the db strategy, the row to insert with it.
func (s *sessions) issueMany(ctx context.Context, subjects []Subject,
	access func(tx *ent.Client, row *ent.Session, now time.Time) (string, time.Time, *ent.AccessTokenCreate),
) ([]Pair, error) {
	now := s.opt.Now()
	out := make([]Pair, 0, len(subjects))
	for start := 0; start < len(subjects); start += bulkBatch {
		batch := subjects[start:min(start+bulkBatch, len(subjects))]
		err := withTx(ctx, s.client, func(ctx context.Context, tx *ent.Client) error {
			rows := make([]*ent.SessionCreate, len(batch))
			secrets := make([]string, len(batch))
			for i, subj := range batch {
				sid := newSessionID()
				secrets[i] = newRefreshSecret(s.opt, sid)
				rows[i] = tx.Session.Create().SetID(sid).SetUserID(subj.UserID).SetProvider(subj.provider()).
					SetAppid(subj.AppID).SetOpenid(subj.OpenID).SetClient(subj.Client).SetDevice(subj.Device).
					SetRefreshHash(hashHex(secrets[i])).SetRefreshExpiresAt(s.opt.newRefreshExpiry(now)).
					SetLastSeenAt(now).SetCreatedAt(now).SetUpdatedAt(now)
			}
			saved, err := tx.Session.CreateBulk(rows...).Save(ctx)
			if err != nil {
				return unavailable("store sessions", err)
			}
			var tokens []*ent.AccessTokenCreate
			for i, row := range saved {
				tok, exp, create := access(tx, row, now)
				if create != nil {
					tokens = append(tokens, create)
				}
				out = append(out, Pair{AccessToken: tok, ExpiresAt: exp, RefreshToken: refreshToken(row.ID, secrets[i]),
					RefreshExpiresAt: row.RefreshExpiresAt, SessionID: row.ID})
			}
			if len(tokens) > 0 {
				if err := tx.AccessToken.CreateBulk(tokens...).Exec(ctx); err != nil {
					return unavailable("store access tokens", err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// IssueMany starts one session per subject in bulk.
func (j *JWT) IssueMany(ctx context.Context, subjects []Subject) ([]Pair, error) {
	return j.sessions.issueMany(ctx, subjects, func(_ *ent.Client, row *ent.Session, now time.Time) (string, time.Time, *ent.AccessTokenCreate) {
		tok, exp, _ := j.sign(row.ID, row.UserID, row.Provider, row.Appid, row.Openid, now)
		return tok, exp, nil
	})
}

// IssueMany starts one session per subject in bulk.
func (d *DB) IssueMany(ctx context.Context, subjects []Subject) ([]Pair, error) {
	return d.sessions.issueMany(ctx, subjects, func(tx *ent.Client, row *ent.Session, now time.Time) (string, time.Time, *ent.AccessTokenCreate) {
		exp := expiry(now, d.opt.Config.TTL)
		tok := newOpaque(d.opt, row.UserID, exp)
		return tok, exp, tx.AccessToken.Create().SetTokenHash(hashHex(tok)).SetSessionID(row.ID).
			SetUserID(row.UserID).SetExpiresAt(exp).SetCreatedAt(now)
	})
}

// IssueMany starts one session per subject in bulk, pipelining the issue
// script (one hash slot per call, so it works on a Redis Cluster).
func (r *Redis) IssueMany(ctx context.Context, subjects []Subject) ([]Pair, error) {
	if err := issueScript.Load(ctx, r.rdb).Err(); err != nil {
		return nil, unavailable("load the issue script", err)
	}
	now := r.opt.Now()
	out := make([]Pair, 0, len(subjects))
	for start := 0; start < len(subjects); start += bulkBatch {
		batch := subjects[start:min(start+bulkBatch, len(subjects))]
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, subj := range batch {
				sid := newRedisSessionID(r.opt, subj.UserID)
				secret := newRefreshSecret(r.opt, sid)
				rexp := r.opt.newRefreshExpiry(now)
				exp := expiry(now, r.opt.Config.TTL)
				access := newOpaque(r.opt, subj.UserID, exp)
				ahash := hashHex(access)
				value, err := json.Marshal(storedAccess{UserID: subj.UserID, Provider: subj.provider(), AppID: subj.AppID,
					OpenID: subj.OpenID, SessionID: sid, Expires: exp.Unix()})
				if err != nil {
					return fmt.Errorf("token: encode access token: %w", err)
				}
				base := r.base(subj.UserID)
				issueScript.EvalSha(ctx, p,
					[]string{base + "u", base + "s:" + sid, base + "sa:" + sid, base + "a:" + ahash},
					base, sid, now.UnixMilli(), 0, "0", subj.Client, subj.Device,
					subj.UserID, subj.provider(), subj.AppID, subj.OpenID, hashHex(secret), rexp.UnixMilli(),
					ahash, value, ms(exp.Sub(now)), r.tomb())
				out = append(out, Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(sid, secret),
					RefreshExpiresAt: rexp, SessionID: sid})
			}
			return nil
		})
		if err != nil {
			return nil, unavailable("store sessions in Redis", err)
		}
	}
	return out, nil
}
