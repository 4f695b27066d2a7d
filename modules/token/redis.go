package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Redis is the "redis" strategy: everything lives in Redis, hashed and with
// a TTL. Keys, under the configured prefix:
//
//	token:s:<sid>    hash: the session (u, p = provider, a, o, rh = refresh hash, rx = refresh expiry ms, g)
//	token:sa:<sid>   set: hashes of the session's access tokens
//	token:a:<hash>   string: an access token's principal (JSON)
//	token:u:<uid>    set: the user's session ids, so logging out everywhere is one script
//
// Every change is one Lua script, so it is atomic. The scripts touch keys
// they compute, so Redis Cluster is not supported.
type Redis struct {
	rdb    *redis.Client
	prefix string
	opt    Options
}

var _ Strategy = (*Redis)(nil)

// NewRedis returns the redis strategy on rdb with keys under prefix.
func NewRedis(rdb *redis.Client, prefix string, o Options) (*Redis, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if rdb == nil {
		return nil, errConfig("the redis strategy needs a Redis client")
	}
	return &Redis{rdb: rdb, prefix: prefix + "token:", opt: o.complete()}, nil
}

// Name is "redis".
func (r *Redis) Name() string { return NameRedis }

// String names the strategy.
func (r *Redis) String() string { return "token.Redis" }

func (r *Redis) sessionKey(sid string) string { return r.prefix + "s:" + sid }
func (r *Redis) accessSetKey(sid string) string {
	return r.prefix + "sa:" + sid
}
func (r *Redis) accessKey(hash string) string { return r.prefix + "a:" + hash }
func (r *Redis) userKey(uid int) string       { return r.prefix + "u:" + strconv.Itoa(uid) }

// storedAccess is the value of an access token key.
type storedAccess struct {
	UserID    int    `json:"u"`
	Provider  string `json:"p,omitempty"`
	AppID     string `json:"a"`
	OpenID    string `json:"o"`
	SessionID string `json:"s"`
	Expires   int64  `json:"x"` // unix seconds
}

// luaRevoke deletes a session, its access tokens and its index entry.
const luaRevoke = `
local function revoke(prefix, sid)
  local s = prefix .. 's:' .. sid
  local u = redis.call('HGET', s, 'u')
  local sa = prefix .. 'sa:' .. sid
  for _, h in ipairs(redis.call('SMEMBERS', sa)) do
    redis.call('DEL', prefix .. 'a:' .. h)
  end
  redis.call('DEL', sa, s)
  if u then redis.call('SREM', prefix .. 'u:' .. u, sid) end
end
`

// issueScript stores a new session with its first access token.
// KEYS: session, access set, access, user index. ARGV: u, a, o, refresh
// hash, refresh expiry ms, refresh ttl ms, access hash, access value,
// access ttl ms, sid, prefix, provider.
var issueScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'p', ARGV[12], 'a', ARGV[2], 'o', ARGV[3], 'rh', ARGV[4], 'rx', ARGV[5], 'g', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[3], ARGV[8], 'PX', ARGV[9])
redis.call('SADD', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if redis.call('EXISTS', ARGV[11] .. 's:' .. sid) == 0 then redis.call('SREM', KEYS[4], sid) end
end
redis.call('SADD', KEYS[4], ARGV[10])
redis.call('PEXPIRE', KEYS[4], ARGV[6])
return 1
`)

// refreshScript swaps the refresh hash if it matches and stores the new
// access token; a mismatch on a live session is a reuse, which revokes it.
// KEYS: session, access set, new access. ARGV: old hash, new hash, now ms,
// new refresh expiry ms, refresh ttl ms, access hash, access value, access
// ttl ms, prefix, sid. Returns 'ok', 'invalid' or 'reused'.
var refreshScript = redis.NewScript(luaRevoke + `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'invalid' end
local rx = tonumber(redis.call('HGET', KEYS[1], 'rx'))
if rx == nil or rx <= tonumber(ARGV[3]) then return 'invalid' end
if redis.call('HGET', KEYS[1], 'rh') ~= ARGV[1] then
  revoke(ARGV[9], ARGV[10])
  return 'reused'
end
redis.call('HSET', KEYS[1], 'rh', ARGV[2], 'rx', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'g', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
for _, h in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[9] .. 'a:' .. h) == 0 then redis.call('SREM', KEYS[2], h) end
end
redis.call('SET', KEYS[3], ARGV[7], 'PX', ARGV[8])
redis.call('SADD', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local u = redis.call('HGET', KEYS[1], 'u')
redis.call('PEXPIRE', ARGV[9] .. 'u:' .. u, ARGV[5])
return 'ok'
`)

// revokeScript revokes one session if it belongs to the user.
// KEYS: session. ARGV: prefix, sid, user id. Returns 1 if revoked.
var revokeScript = redis.NewScript(luaRevoke + `
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[3] then return 0 end
revoke(ARGV[1], ARGV[2])
return 1
`)

// revokeAllScript revokes every session of a user in one call.
// KEYS: user index. ARGV: prefix. Returns the session ids.
var revokeAllScript = redis.NewScript(luaRevoke + `
local sids = redis.call('SMEMBERS', KEYS[1])
for _, sid in ipairs(sids) do revoke(ARGV[1], sid) end
redis.call('DEL', KEYS[1])
return sids
`)

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Issue stores a new session and its first access token.
func (r *Redis) Issue(ctx context.Context, subj Subject) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := r.opt.Now()
	sid := newSessionID()
	secret := newRefreshSecret(r.opt, sid)
	rexp := expiry(now, r.opt.Config.RefreshTTL)
	access, exp := newSecret(), expiry(now, r.opt.Config.TTL)
	ahash := hashHex(access)
	value, err := json.Marshal(storedAccess{UserID: subj.UserID, Provider: subj.provider(), AppID: subj.AppID, OpenID: subj.OpenID, SessionID: sid, Expires: exp.Unix()})
	if err != nil {
		return Pair{}, fmt.Errorf("token: encode access token: %w", err)
	}
	err = issueScript.Run(ctx, r.rdb,
		[]string{r.sessionKey(sid), r.accessSetKey(sid), r.accessKey(ahash), r.userKey(subj.UserID)},
		subj.UserID, subj.AppID, subj.OpenID, hashHex(secret), rexp.UnixMilli(), ms(rexp.Sub(now)),
		ahash, value, ms(exp.Sub(now)), sid, r.prefix, subj.provider()).Err()
	if err != nil {
		return Pair{}, fmt.Errorf("token: store session in Redis: %w", err)
	}
	return Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(sid, secret),
		RefreshExpiresAt: rexp, SessionID: sid}, nil
}

// Verify reads the token's key.
func (r *Redis) Verify(ctx context.Context, accessToken string) (Principal, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if !isOpaque(accessToken) {
		return Principal{}, unauthenticated("malformed")
	}
	hash := hashHex(accessToken)
	b, err := r.rdb.Get(ctx, r.accessKey(hash)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Principal{}, unauthenticated("unknown, expired or revoked")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("token: look the access token up: %w", err)
	}
	var v storedAccess
	if err := json.Unmarshal(b, &v); err != nil {
		return Principal{}, fmt.Errorf("token: stored access token unreadable: %w", err)
	}
	exp := time.Unix(v.Expires, 0).UTC()
	if !r.opt.Now().Before(exp) {
		return Principal{}, unauthenticated("expired")
	}
	if v.Provider == "" {
		v.Provider = DefaultProvider
	}
	return Principal{UserID: v.UserID, Provider: v.Provider, AppID: v.AppID, OpenID: v.OpenID, SessionID: v.SessionID,
		TokenID: tokenIDOf(hash), ExpiresAt: exp}, nil
}

// Refresh rotates the refresh token in one script.
func (r *Redis) Refresh(ctx context.Context, tok string) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	sid, secret, ok := parseRefresh(r.opt, tok)
	if !ok {
		return Pair{}, invalidRefresh("malformed")
	}
	now := r.opt.Now()
	// The session's immutable fields go into the new access token.
	fields, err := r.rdb.HMGet(ctx, r.sessionKey(sid), "u", "a", "o", "p").Result()
	if err != nil {
		return Pair{}, fmt.Errorf("token: read session: %w", err)
	}
	uidStr, _ := fields[0].(string)
	uid, err := strconv.Atoi(uidStr)
	if err != nil {
		return Pair{}, invalidRefresh("unknown session")
	}
	appID, _ := fields[1].(string)
	openID, _ := fields[2].(string)
	provider, _ := fields[3].(string)

	next := newRefreshSecret(r.opt, sid)
	rexp := expiry(now, r.opt.Config.RefreshTTL)
	access, exp := newSecret(), expiry(now, r.opt.Config.TTL)
	ahash := hashHex(access)
	value, err := json.Marshal(storedAccess{UserID: uid, Provider: Subject{Provider: provider}.provider(), AppID: appID, OpenID: openID, SessionID: sid, Expires: exp.Unix()})
	if err != nil {
		return Pair{}, fmt.Errorf("token: encode access token: %w", err)
	}
	res, err := refreshScript.Run(ctx, r.rdb,
		[]string{r.sessionKey(sid), r.accessSetKey(sid), r.accessKey(ahash)},
		hashHex(secret), hashHex(next), now.UnixMilli(), rexp.UnixMilli(), ms(rexp.Sub(now)),
		ahash, value, ms(exp.Sub(now)), r.prefix, sid).Text()
	if err != nil {
		return Pair{}, fmt.Errorf("token: rotate refresh token: %w", err)
	}
	switch res {
	case "ok":
		return Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(sid, next),
			RefreshExpiresAt: rexp, SessionID: sid}, nil
	case "reused":
		r.opt.Logger.Warn("token: a spent refresh token was presented again; its session is revoked",
			zap.String("session_id", sid), zap.Int("user_id", uid))
		if err := r.opt.Feed.Publish(ctx, Revoked{UserID: uid, SessionIDs: []string{sid}}); err != nil {
			return Pair{}, err
		}
		return Pair{}, fmt.Errorf("%w (session %s)", ErrRefreshReused, sid)
	default:
		return Pair{}, invalidRefresh("unknown, expired or revoked session")
	}
}

// Revoke ends p's session.
func (r *Redis) Revoke(ctx context.Context, p Principal) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if p.SessionID == "" {
		return errors.New("token: revoke: the principal names no session")
	}
	err := revokeScript.Run(ctx, r.rdb, []string{r.sessionKey(p.SessionID)},
		r.prefix, p.SessionID, strconv.Itoa(p.UserID)).Err()
	if err != nil {
		return fmt.Errorf("token: revoke session: %w", err)
	}
	return r.opt.Feed.Publish(ctx, Revoked{UserID: p.UserID, SessionIDs: []string{p.SessionID}})
}

// RevokeAll ends every session of the user in one script.
func (r *Redis) RevokeAll(ctx context.Context, userID int) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	sids, err := revokeAllScript.Run(ctx, r.rdb, []string{r.userKey(userID)}, r.prefix).StringSlice()
	if err != nil {
		return fmt.Errorf("token: revoke sessions: %w", err)
	}
	return r.opt.Feed.Publish(ctx, Revoked{UserID: userID, SessionIDs: sids, AllSessions: true})
}
