package token

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/revocation"
)

// DenyList holds the sessions whose JWTs must be refused until they expire,
// with the reason told to the client.
type DenyList interface {
	// Deny refuses the sessions' tokens until until.
	Deny(ctx context.Context, userID int, sids []string, reason Reason, until time.Time) error
	// Denied reports whether the session's tokens are refused at now, and why.
	Denied(ctx context.Context, sid string, now time.Time) (Reason, bool, error)
	// Live lists every denial still in force at now: what an instance loads
	// into memory at start and whenever its feed comes back.
	Live(ctx context.Context, now time.Time) ([]Denial, error)
}

// Denial is one session on the deny list.
type Denial struct {
	SessionID string
	UserID    int
	Reason    Reason
	Until     time.Time
}

// DBDenyList keeps the deny list in the database's revocation table, which
// a [PollFeed] also reads.
type DBDenyList struct{ client *ent.Client }

var _ DenyList = (*DBDenyList)(nil)

// NewDBDenyList returns a deny list in the database.
func NewDBDenyList(client *ent.Client) *DBDenyList { return &DBDenyList{client: client} }

// Deny writes one revocation row per session, in the transaction ctx
// carries (ent.NewTxContext) if any: it must be one of this database.
func (d *DBDenyList) Deny(ctx context.Context, userID int, sids []string, reason Reason, until time.Time) error {
	c := d.client
	if tx := ent.TxFromContext(ctx); tx != nil {
		c = tx.Client()
	}
	return recordRevocations(ctx, c, userID, sids, reason, until, time.Now())
}

// Denied looks for a revocation row of the session that is still in force.
func (d *DBDenyList) Denied(ctx context.Context, sid string, now time.Time) (Reason, bool, error) {
	return deniedInDB(ctx, d.client, sid, now)
}

// Live reads the revocation rows still in force.
func (d *DBDenyList) Live(ctx context.Context, now time.Time) ([]Denial, error) {
	rows, err := d.client.Revocation.Query().Where(revocation.ExpiresAtGT(now.UTC())).All(ctx)
	if err != nil {
		return nil, unavailable("read the deny list", err)
	}
	out := make([]Denial, len(rows))
	for i, r := range rows {
		out[i] = Denial{SessionID: r.SessionID, UserID: r.UserID, Reason: storedReason(r.Reason), Until: r.ExpiresAt.UTC()}
	}
	return out, nil
}

// RedisDenyList keeps the deny list in Redis: one key per session holding
// "<until>|<reason>", which expires with the session's last access token
// (Denied reads it), and one sorted set of every denial by expiry (Live
// reads it). Each command touches one key, so it works on Redis Cluster.
type RedisDenyList struct {
	rdb    redis.UniversalClient
	prefix string
	index  string
}

var _ DenyList = (*RedisDenyList)(nil)

// NewRedisDenyList returns a deny list under prefix+"token:deny:".
func NewRedisDenyList(rdb redis.UniversalClient, prefix string) *RedisDenyList {
	return &RedisDenyList{rdb: rdb, prefix: prefix + "token:deny:", index: prefix + "token:denied"}
}

// Deny sets the sessions' keys and adds them to the index.
func (d *RedisDenyList) Deny(ctx context.Context, userID int, sids []string, reason Reason, until time.Time) error {
	if len(sids) == 0 {
		return nil
	}
	// Redis expires keys on its own clock; the value carries the instant for
	// Denied, and the key lives at least a minute longer than needed.
	ttl := max(time.Until(until)+time.Minute, time.Minute)
	value := strconv.FormatInt(until.Unix(), 10) + "|" + string(reason)
	members := make([]redis.Z, len(sids))
	for i, sid := range sids {
		members[i] = redis.Z{Score: float64(until.Unix()), Member: sid + "|" + strconv.Itoa(userID) + "|" + string(reason)}
	}
	_, err := d.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, sid := range sids {
			p.Set(ctx, d.prefix+sid, value, ttl)
		}
		p.ZAdd(ctx, d.index, members...)
		p.ZRemRangeByScore(ctx, d.index, "-inf", "("+strconv.FormatInt(time.Now().Unix(), 10))
		p.Expire(ctx, d.index, ttl)
		return nil
	})
	return unavailable("write the deny list", err)
}

// Denied reads the session's key.
func (d *RedisDenyList) Denied(ctx context.Context, sid string, now time.Time) (Reason, bool, error) {
	v, err := d.rdb.Get(ctx, d.prefix+sid).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("read the deny list", err)
	}
	untilStr, reason, _ := strings.Cut(v, "|")
	until, err := strconv.ParseInt(untilStr, 10, 64)
	if err != nil {
		return ReasonRevoked, true, nil // unreadable: refuse rather than accept
	}
	return storedReason(reason), now.Unix() < until, nil
}

// Live reads the index.
func (d *RedisDenyList) Live(ctx context.Context, now time.Time) ([]Denial, error) {
	zs, err := d.rdb.ZRangeByScoreWithScores(ctx, d.index, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.Unix(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, unavailable("read the deny list", err)
	}
	out := make([]Denial, 0, len(zs))
	for _, z := range zs {
		member, _ := z.Member.(string)
		parts := strings.SplitN(member, "|", 3)
		if len(parts) != 3 {
			continue
		}
		uid, _ := strconv.Atoi(parts[1])
		out = append(out, Denial{SessionID: parts[0], UserID: uid, Reason: storedReason(parts[2]),
			Until: time.Unix(int64(z.Score), 0).UTC()})
	}
	return out, nil
}
