package token

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/accesstoken"
	"github.com/wxlogin/wxlogin/ent/revocation"
	"github.com/wxlogin/wxlogin/ent/session"
	"github.com/wxlogin/wxlogin/internal/periodic"
)

// Cleaner deletes, every interval, the access tokens that expired, the
// sessions whose refresh token expired (their access tokens expired no
// later) and the revocation rows no token can need any more. Redis keys
// expire on their own.
type Cleaner struct {
	periodic.Loop
	client *ent.Client
	every  time.Duration
	log    *zap.Logger
	now    func() time.Time
}

// Cleaned counts what one pass deleted.
type Cleaned struct {
	AccessTokens, Sessions, Revocations int
}

// cleanBatch bounds one DELETE so that no pass holds long locks.
const cleanBatch = 1000

// NewCleaner returns a cleaner; Start runs it, Stop ends it. now may be nil.
func NewCleaner(client *ent.Client, every time.Duration, log *zap.Logger, now func() time.Time) *Cleaner {
	if log == nil {
		log = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	if every <= 0 {
		every = time.Minute
	}
	return &Cleaner{client: client, every: every, log: log, now: now}
}

// Start runs a pass every interval in the background until Stop.
func (c *Cleaner) Start(context.Context) error {
	c.Loop.Every(c.every, func(ctx context.Context) {
		passCtx, cancel := context.WithTimeout(ctx, max(c.every, 30*time.Second))
		n, err := c.Clean(passCtx)
		cancel()
		if err != nil && ctx.Err() == nil {
			c.log.Warn("token: cleanup failed", zap.Error(err))
		} else if n != (Cleaned{}) {
			c.log.Debug("token: cleanup", zap.Int("access_tokens", n.AccessTokens),
				zap.Int("sessions", n.Sessions), zap.Int("revocations", n.Revocations))
		}
	})
	return nil
}

// Stop ends the background job and waits for it.
func (c *Cleaner) Stop(ctx context.Context) error { return c.Loop.Stop(ctx) }

// Clean runs one pass.
func (c *Cleaner) Clean(ctx context.Context) (Cleaned, error) {
	now := c.now().UTC()
	var out Cleaned
	var err error
	out.AccessTokens, err = deleteBatches(ctx, func(ctx context.Context) (int, error) {
		ids, err := c.client.AccessToken.Query().Where(accesstoken.ExpiresAtLTE(now)).Limit(cleanBatch).IDs(ctx)
		if err != nil || len(ids) == 0 {
			return 0, err
		}
		return c.client.AccessToken.Delete().Where(accesstoken.IDIn(ids...)).Exec(ctx)
	})
	if err != nil {
		return out, fmt.Errorf("token: delete expired access tokens: %w", err)
	}
	out.Sessions, err = deleteBatches(ctx, func(ctx context.Context) (int, error) {
		ids, err := c.client.Session.Query().Where(session.RefreshExpiresAtLTE(now)).Limit(cleanBatch).IDs(ctx)
		if err != nil || len(ids) == 0 {
			return 0, err
		}
		if _, err := c.client.AccessToken.Delete().Where(accesstoken.SessionIDIn(ids...)).Exec(ctx); err != nil {
			return 0, err
		}
		return c.client.Session.Delete().Where(session.IDIn(ids...)).Exec(ctx)
	})
	if err != nil {
		return out, fmt.Errorf("token: delete expired sessions: %w", err)
	}
	out.Revocations, err = deleteBatches(ctx, func(ctx context.Context) (int, error) {
		ids, err := c.client.Revocation.Query().Where(revocation.ExpiresAtLTE(now)).Limit(cleanBatch).IDs(ctx)
		if err != nil || len(ids) == 0 {
			return 0, err
		}
		return c.client.Revocation.Delete().Where(revocation.IDIn(ids...)).Exec(ctx)
	})
	if err != nil {
		return out, fmt.Errorf("token: delete expired revocations: %w", err)
	}
	return out, nil
}

func deleteBatches(ctx context.Context, batch func(context.Context) (int, error)) (int, error) {
	total := 0
	for {
		n, err := batch(ctx)
		total += n
		if err != nil || n < cleanBatch {
			return total, err
		}
	}
}
