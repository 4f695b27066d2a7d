package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Redis is the "redis" strategy: everything lives in Redis, hashed and with
// a TTL. Every key of a user carries the user id as its hash tag, so that
// each script touches one hash slot and the strategy works on a Redis
// Cluster. Keys, under the configured prefix:
//
//	token:{<uid>}:s:<sid>    hash: the session (u, p = provider, a, o, c = client, d = device,
//	                         ca = created ms, ls = last seen ms, rh = refresh hash, rx = refresh
//	                         expiry ms, ph = replaced refresh hash, rt = rotated ms, rs = sealed
//	                         current refresh secret, g); once ended only rv = the reason
//	token:{<uid>}:sa:<sid>   set: hashes of the session's access tokens
//	token:{<uid>}:a:<hash>   string: an access token's principal (JSON), or "!<reason>" once
//	                         its session ended (until the token would have expired)
//	token:{<uid>}:u          sorted set: the user's live session ids by creation time
//
// Access tokens are opaque sealed values that carry the user id (see
// newOpaque), and session ids carry it sealed too, so Verify and Refresh
// find the hash tag without showing the user id to anyone. Every change is
// one Lua script, so it is atomic.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	opt    Options
}

var _ Strategy = (*Redis)(nil)

// NewRedis returns the redis strategy on rdb (a *redis.Client or a
// *redis.ClusterClient) with keys under prefix.
func NewRedis(rdb redis.UniversalClient, prefix string, o Options) (*Redis, error) {
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

// base is the start of every key of the user: prefix, then the hash tag.
func (r *Redis) base(uid int) string { return r.prefix + "{" + strconv.Itoa(uid) + "}:" }

// storedAccess is the value of an access token key.
type storedAccess struct {
	UserID    int    `json:"u"`
	Provider  string `json:"p,omitempty"`
	AppID     string `json:"a"`
	OpenID    string `json:"o"`
	SessionID string `json:"s"`
	Expires   int64  `json:"x"` // unix seconds
}

// luaLib holds the functions the scripts share. revoke ends a session: its
// access tokens become tombstones holding the reason until they would have
// expired, the session hash becomes a tombstone (for Refresh to say why)
// for tomb ms, the index forgets it. live tells a session that still runs.
const luaLib = `
local function revoke(base, sid, reason, tomb)
  local s = base .. 's:' .. sid
  if redis.call('EXISTS', s) == 0 or redis.call('HEXISTS', s, 'rv') == 1 then
    redis.call('ZREM', base .. 'u', sid)
    return 0
  end
  local sa = base .. 'sa:' .. sid
  for _, h in ipairs(redis.call('SMEMBERS', sa)) do
    local a = base .. 'a:' .. h
    if redis.call('EXISTS', a) == 1 then redis.call('SET', a, '!' .. reason, 'KEEPTTL') end
  end
  redis.call('DEL', sa, s)
  redis.call('HSET', s, 'rv', reason)
  redis.call('PEXPIRE', s, tomb)
  redis.call('ZREM', base .. 'u', sid)
  return 1
end
local function live(base, sid, now)
  local v = redis.call('HMGET', base .. 's:' .. sid, 'rx', 'rv')
  return v[1] and not v[2] and tonumber(v[1]) > now
end
local function extend(key, ms)
  local t = redis.call('PTTL', key)
  if t >= 0 and t < ms then redis.call('PEXPIRE', key, ms) end
end
local function store_access(base, sa, key, hash, value, ttl, sttl)
  for _, h in ipairs(redis.call('SMEMBERS', sa)) do
    if redis.call('EXISTS', base .. 'a:' .. h) == 0 then redis.call('SREM', sa, h) end
  end
  redis.call('SET', key, value, 'PX', ttl)
  redis.call('SADD', sa, hash)
  redis.call('PEXPIRE', sa, sttl)
end
`

// issueScript applies the session policy and stores a new session with its
// first access token. KEYS: index, session, access set, access. ARGV: base,
// sid, now ms, max sessions, single per client (0/1), client, device, u,
// provider, appid, openid, refresh hash, refresh expiry ms, access hash,
// access value, access ttl ms, tombstone ms. Returns the ended sessions as
// sid, reason, sid, reason, …
var issueScript = redis.NewScript(luaLib + `
local base, sid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local maxn, client, tomb = tonumber(ARGV[4]), ARGV[6], ARGV[17]
local ended = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if not live(base, id, now) then redis.call('ZREM', KEYS[1], id) end
end
if ARGV[5] == '1' then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if redis.call('HGET', base .. 's:' .. id, 'c') == client then
      revoke(base, id, 'replaced', tomb)
      table.insert(ended, id); table.insert(ended, 'replaced')
    end
  end
end
if maxn > 0 then
  while redis.call('ZCARD', KEYS[1]) >= maxn do
    local id = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    revoke(base, id, 'session_limit', tomb)
    table.insert(ended, id); table.insert(ended, 'session_limit')
  end
end
local rx = tonumber(ARGV[13])
local sttl = rx - now + tonumber(tomb)
redis.call('HSET', KEYS[2], 'u', ARGV[8], 'p', ARGV[9], 'a', ARGV[10], 'o', ARGV[11], 'c', client, 'd', ARGV[7],
  'ca', ARGV[3], 'ls', ARGV[3], 'rh', ARGV[12], 'rx', ARGV[13], 'g', 0)
redis.call('PEXPIRE', KEYS[2], sttl)
store_access(base, KEYS[3], KEYS[4], ARGV[14], ARGV[15], ARGV[16], sttl)
redis.call('ZADD', KEYS[1], now, sid)
extend(KEYS[1], sttl)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], sttl) end
return ended
`)

// refreshScript rotates the refresh token when the presented one is
// current, answers with the current one within the grace window after it
// was replaced, and otherwise (a reuse) revokes the session.
// KEYS: session, access set, new access, index. ARGV: base, sid, now ms,
// presented hash, new hash, new sealed secret, refresh ttl ms, idle ms,
// grace ms, access hash, access ttl ms, tombstone ms, access expiry (unix s).
// Returns {'ok', rx} | {'grace', sealed, rx} | {'reused'} | {'revoked', reason} | {'expired'} | {'invalid'}.
var refreshScript = redis.NewScript(luaLib + `
local base, sid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then return {'invalid'} end
local f = redis.call('HMGET', KEYS[1], 'rv', 'rx', 'rh', 'ph', 'rt', 'rs', 'ca', 'u', 'p', 'a', 'o')
if f[1] then return {'revoked', f[1]} end
if tonumber(f[2]) <= now then return {'expired'} end
local value = cjson.encode({u = tonumber(f[8]), p = f[9], a = f[10], o = f[11], s = sid, x = tonumber(ARGV[13])})
if f[3] == ARGV[4] then
  local rx = now + tonumber(ARGV[7])
  local idle = tonumber(ARGV[8])
  if idle > 0 then rx = math.min(tonumber(f[7]) + tonumber(ARGV[7]), now + idle) end
  rx = rx - rx % 1000
  local sttl = rx - now + tonumber(ARGV[12])
  redis.call('HSET', KEYS[1], 'rh', ARGV[5], 'ph', ARGV[4], 'rt', ARGV[3], 'rs', ARGV[6],
    'rx', string.format('%.0f', rx), 'ls', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'g', 1)
  redis.call('PEXPIRE', KEYS[1], sttl)
  store_access(base, KEYS[2], KEYS[3], ARGV[10], value, ARGV[11], sttl)
  extend(KEYS[4], sttl)
  return {'ok', string.format('%.0f', rx)}
end
local grace = tonumber(ARGV[9])
if f[4] and f[4] == ARGV[4] and grace > 0 and now - tonumber(f[5]) <= grace then
  store_access(base, KEYS[2], KEYS[3], ARGV[10], value, ARGV[11], redis.call('PTTL', KEYS[1]))
  return {'grace', f[6], f[2]}
end
revoke(base, sid, 'revoked', ARGV[12])
return {'reused'}
`)

// revokeScript ends one session of the user; liveOnly (1) refuses a
// session that already expired. KEYS: session. ARGV: base, sid, uid,
// reason, tombstone ms, now ms, liveOnly. Returns 1 if it ended one.
var revokeScript = redis.NewScript(luaLib + `
local f = redis.call('HMGET', KEYS[1], 'u', 'rv', 'rx')
if not f[1] or f[1] ~= ARGV[3] or f[2] then return 0 end
if ARGV[7] == '1' and tonumber(f[3]) <= tonumber(ARGV[6]) then return 0 end
return revoke(ARGV[1], ARGV[2], ARGV[4], ARGV[5])
`)

// revokeAllScript ends every session of a user. KEYS: index. ARGV: base,
// reason, tombstone ms. Returns the session ids.
var revokeAllScript = redis.NewScript(luaLib + `
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(sids) do revoke(ARGV[1], sid, ARGV[2], ARGV[3]) end
redis.call('DEL', KEYS[1])
return sids
`)

// sessionsScript lists the live sessions. KEYS: index. ARGV: base, now ms.
// Returns sid, c, d, p, a, ca, ls, rx for each.
var sessionsScript = redis.NewScript(luaLib + `
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('HMGET', ARGV[1] .. 's:' .. sid, 'c', 'd', 'p', 'a', 'ca', 'ls', 'rx', 'rv')
  if v[7] and not v[8] and tonumber(v[7]) > tonumber(ARGV[2]) then
    table.insert(out, sid)
    for i = 1, 7 do table.insert(out, v[i] or '') end
  end
end
return out
`)

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// tomb is how long ended sessions and tokens keep their reason: an access
// token lifetime (no access token of the session outlives it).
func (r *Redis) tomb() int64 { return ms(r.opt.Config.TTL + time.Second) }

// Issue applies the session policy and stores a new session and its first
// access token, in one script.
func (r *Redis) Issue(ctx context.Context, subj Subject) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	now := r.opt.Now()
	sid := newRedisSessionID(r.opt, subj.UserID)
	secret := newRefreshSecret(r.opt, sid)
	rexp := r.opt.newRefreshExpiry(now)
	exp := expiry(now, r.opt.Config.TTL)
	access := newOpaque(r.opt, subj.UserID, exp)
	ahash := hashHex(access)
	value, err := json.Marshal(storedAccess{UserID: subj.UserID, Provider: subj.provider(), AppID: subj.AppID,
		OpenID: subj.OpenID, SessionID: sid, Expires: exp.Unix()})
	if err != nil {
		return Pair{}, fmt.Errorf("token: encode access token: %w", err)
	}
	single := "0"
	if r.opt.Config.SessionSinglePerClient {
		single = "1"
	}
	base := r.base(subj.UserID)
	ended, err := issueScript.Run(ctx, r.rdb,
		[]string{base + "u", base + "s:" + sid, base + "sa:" + sid, base + "a:" + ahash},
		base, sid, now.UnixMilli(), r.opt.Config.SessionMax, single, subj.Client, subj.Device,
		subj.UserID, subj.provider(), subj.AppID, subj.OpenID, hashHex(secret), rexp.UnixMilli(),
		ahash, value, ms(exp.Sub(now)), r.tomb()).StringSlice()
	if err != nil {
		return Pair{}, unavailable("store session in Redis", err)
	}
	for i := 0; i+1 < len(ended); i += 2 {
		err := r.opt.Feed.Publish(ctx, Revoked{UserID: subj.UserID, SessionIDs: []string{ended[i]},
			Reason: Reason(ended[i+1]), Until: exp})
		if err != nil {
			r.opt.Logger.Warn("token: sessions ended by a login were not announced", zap.Error(err))
			break
		}
	}
	return Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(sid, secret),
		RefreshExpiresAt: rexp, SessionID: sid}, nil
}

// Verify opens the token (a forged or expired one is refused without
// Redis), then reads its key.
func (r *Redis) Verify(ctx context.Context, accessToken string) (Principal, error) {
	uid, exp, ok := parseOpaque(r.opt, accessToken)
	if !ok {
		return Principal{}, unauthenticated(ReasonInvalid, "malformed or forged")
	}
	if !r.opt.Now().Before(exp) {
		return Principal{}, unauthenticated(ReasonExpired, "expired")
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	hash := hashHex(accessToken)
	b, err := r.rdb.Get(ctx, r.base(uid)+"a:"+hash).Bytes()
	if errors.Is(err, redis.Nil) {
		return Principal{}, unauthenticated(ReasonInvalid, "unknown")
	}
	if err != nil {
		return Principal{}, unavailable("look the access token up", err)
	}
	if len(b) > 0 && b[0] == '!' {
		return Principal{}, unauthenticated(storedReason(string(b[1:])), "session ended")
	}
	var v storedAccess
	if err := json.Unmarshal(b, &v); err != nil || v.UserID != uid {
		return Principal{}, unauthenticated(ReasonInvalid, "stored access token unreadable")
	}
	if v.Provider == "" {
		v.Provider = DefaultProvider
	}
	return Principal{UserID: v.UserID, Provider: v.Provider, AppID: v.AppID, OpenID: v.OpenID, SessionID: v.SessionID,
		TokenID: tokenIDOf(hash), ExpiresAt: time.Unix(v.Expires, 0).UTC()}, nil
}

// Refresh rotates the refresh token in one script.
func (r *Redis) Refresh(ctx context.Context, tok string) (Pair, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	sid, secret, ok := parseRefresh(r.opt, tok)
	if !ok {
		return Pair{}, invalidRefresh(ReasonInvalid, "malformed")
	}
	uid, ok := redisSessionUser(r.opt, sid)
	if !ok {
		return Pair{}, invalidRefresh(ReasonInvalid, "not a session of this strategy")
	}
	now := r.opt.Now()
	next := newRefreshSecret(r.opt, sid)
	exp := expiry(now, r.opt.Config.TTL)
	access := newOpaque(r.opt, uid, exp)
	ahash := hashHex(access)
	base := r.base(uid)
	res, err := refreshScript.Run(ctx, r.rdb,
		[]string{base + "s:" + sid, base + "sa:" + sid, base + "a:" + ahash, base + "u"},
		base, sid, now.UnixMilli(), hashHex(secret), hashHex(next), sealRefresh(r.opt, sid, next),
		ms(r.opt.Config.RefreshTTL), int64(r.opt.Config.RefreshIdle/time.Millisecond),
		int64(r.opt.Config.RefreshGrace/time.Millisecond), ahash, ms(exp.Sub(now)), r.tomb(), exp.Unix()).StringSlice()
	if err != nil {
		return Pair{}, unavailable("rotate refresh token", err)
	}
	if len(res) == 0 {
		return Pair{}, unavailable("rotate refresh token", errors.New("empty script answer"))
	}
	rexpOf := func(s string) time.Time {
		n, _ := strconv.ParseInt(s, 10, 64)
		return time.UnixMilli(n).UTC()
	}
	switch res[0] {
	case "ok":
		return Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(sid, next),
			RefreshExpiresAt: rexpOf(res[1]), SessionID: sid}, nil
	case "grace":
		current, ok := openRefresh(r.opt, sid, res[1])
		if !ok {
			return Pair{}, invalidRefresh("", "replaced refresh token, current one not recoverable")
		}
		return Pair{AccessToken: access, ExpiresAt: exp, RefreshToken: refreshToken(sid, current),
			RefreshExpiresAt: rexpOf(res[2]), SessionID: sid}, nil
	case "reused":
		r.opt.Logger.Warn("token: a spent refresh token was presented again; its session is revoked",
			zap.String("session_id", sid), zap.Int("user_id", uid))
		if err := r.opt.Feed.Publish(ctx, Revoked{UserID: uid, SessionIDs: []string{sid}, Reason: ReasonRevoked, Until: exp}); err != nil {
			return Pair{}, err
		}
		return Pair{}, fmt.Errorf("%w (session %s)", ErrRefreshReused, sid)
	case "revoked":
		return Pair{}, invalidRefresh(storedReason(res[1]), "session ended")
	case "expired":
		return Pair{}, invalidRefresh(ReasonExpired, "session expired")
	default:
		return Pair{}, invalidRefresh(ReasonInvalid, "unknown session")
	}
}

// Revoke logs p's session out.
func (r *Redis) Revoke(ctx context.Context, p Principal) error {
	if p.SessionID == "" {
		return errConfig("revoke: the principal names no session")
	}
	_, err := r.revoke(ctx, p.UserID, p.SessionID, ReasonLoggedOut, false)
	return err
}

// RevokeSession ends one live session of the user.
func (r *Redis) RevokeSession(ctx context.Context, userID int, sessionID string, reason Reason) error {
	if uid, ok := redisSessionUser(r.opt, sessionID); !ok || uid != userID {
		return ErrSessionNotFound
	}
	ended, err := r.revoke(ctx, userID, sessionID, reason, true)
	if err != nil {
		return err
	}
	if !ended {
		return ErrSessionNotFound
	}
	return nil
}

func (r *Redis) revoke(ctx context.Context, userID int, sid string, reason Reason, liveOnly bool) (bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	reason = revokeReason(reason)
	now := r.opt.Now()
	only := "0"
	if liveOnly {
		only = "1"
	}
	base := r.base(userID)
	n, err := revokeScript.Run(ctx, r.rdb, []string{base + "s:" + sid},
		base, sid, strconv.Itoa(userID), string(reason), r.tomb(), now.UnixMilli(), only).Int()
	if err != nil {
		return false, unavailable("revoke session", err)
	}
	if n == 0 {
		return false, nil
	}
	return true, r.opt.Feed.Publish(ctx, Revoked{UserID: userID, SessionIDs: []string{sid}, Reason: reason,
		Until: expiry(now, r.opt.Config.TTL)})
}

// RevokeAll ends every session of the user in one script.
func (r *Redis) RevokeAll(ctx context.Context, userID int, reason Reason) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	reason = revokeReason(reason)
	now := r.opt.Now()
	base := r.base(userID)
	sids, err := revokeAllScript.Run(ctx, r.rdb, []string{base + "u"}, base, string(reason), r.tomb()).StringSlice()
	if err != nil {
		return unavailable("revoke sessions", err)
	}
	return r.opt.Feed.Publish(ctx, Revoked{UserID: userID, SessionIDs: sids, AllSessions: true, Reason: reason,
		Until: expiry(now, r.opt.Config.TTL)})
}

// Sessions lists the user's live sessions.
func (r *Redis) Sessions(ctx context.Context, userID int) ([]SessionInfo, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	base := r.base(userID)
	v, err := sessionsScript.Run(ctx, r.rdb, []string{base + "u"}, base, r.opt.Now().UnixMilli()).StringSlice()
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	msTime := func(s string) time.Time {
		n, _ := strconv.ParseInt(s, 10, 64)
		return time.UnixMilli(n).UTC()
	}
	out := make([]SessionInfo, 0, len(v)/8)
	for i := 0; i+7 < len(v); i += 8 {
		out = append(out, SessionInfo{ID: v[i], Client: v[i+1], Device: v[i+2], Provider: v[i+3], AppID: v[i+4],
			CreatedAt: msTime(v[i+5]), LastSeenAt: msTime(v[i+6]), ExpiresAt: msTime(v[i+7])})
	}
	sort.SliceStable(out, func(a, b int) bool {
		if !out[a].LastSeenAt.Equal(out[b].LastSeenAt) {
			return out[a].LastSeenAt.After(out[b].LastSeenAt)
		}
		return out[a].CreatedAt.After(out[b].CreatedAt)
	})
	return out, nil
}
