package token

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxlogin/wxlogin/ent"
)

// DenyList holds the sessions whose JWTs must be refused until they expire.
type DenyList interface {
	// Deny refuses the sessions' tokens until until.
	Deny(ctx context.Context, userID int, sids []string, until time.Time) error
	// Denied reports whether the session's tokens are refused at now.
	Denied(ctx context.Context, sid string, now time.Time) (bool, error)
}

// DBDenyList keeps the deny list in the database's revocation table, which
// a [PollFeed] also reads.
type DBDenyList struct{ client *ent.Client }

var _ DenyList = (*DBDenyList)(nil)

// NewDBDenyList returns a deny list in the database.
func NewDBDenyList(client *ent.Client) *DBDenyList { return &DBDenyList{client: client} }

// Deny writes one revocation row per session.
func (d *DBDenyList) Deny(ctx context.Context, userID int, sids []string, until time.Time) error {
	if len(sids) == 0 {
		return nil
	}
	return recordRevocations(ctx, d.client, userID, sids, until, time.Now())
}

// Denied looks for a revocation row of the session that is still in force.
func (d *DBDenyList) Denied(ctx context.Context, sid string, now time.Time) (bool, error) {
	return revokedInDB(ctx, d.client, sid, now)
}

// RedisDenyList keeps the deny list in Redis, one key per session that
// expires with the session's last access token.
type RedisDenyList struct {
	rdb    *redis.Client
	prefix string
}

var _ DenyList = (*RedisDenyList)(nil)

// NewRedisDenyList returns a deny list under prefix+"token:deny:".
func NewRedisDenyList(rdb *redis.Client, prefix string) *RedisDenyList {
	return &RedisDenyList{rdb: rdb, prefix: prefix + "token:deny:"}
}

// Deny sets one key per session holding the expiry (unix seconds), kept
// until then.
func (d *RedisDenyList) Deny(ctx context.Context, _ int, sids []string, until time.Time) error {
	if len(sids) == 0 {
		return nil
	}
	// Redis expires keys on its own clock; the value carries the instant for
	// Denied, and the key lives at least a TTL longer than needed.
	ttl := time.Until(until) + time.Minute
	if ttl < time.Minute {
		ttl = time.Minute
	}
	_, err := d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, sid := range sids {
			p.Set(ctx, d.prefix+sid, until.Unix(), ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("token: write the deny list: %w", err)
	}
	return nil
}

// Denied reads the session's key.
func (d *RedisDenyList) Denied(ctx context.Context, sid string, now time.Time) (bool, error) {
	until, err := d.rdb.Get(ctx, d.prefix+sid).Int64()
	if err == redis.Nil {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("token: read the deny list: %w", err)
	}
	return now.Unix() < until, nil
}
