package platformtoken

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore shares tokens through Redis, so a fleet fetches one token per
// expiry window and appid. For appid A under prefix P it uses two keys:
//
//	P + "access_token:{" + A + "}"        hash {v: token, r: RefreshAt, e: ExpiresAt} (Unix ms), expiring at ExpiresAt
//	P + "access_token_lock:{" + A + "}"   the fetch lock: SET NX PX, released by a Lua compare-and-delete
//
// Every command and script touches one key, and the {A} hash tag puts an
// app's two keys in one slot of a Redis Cluster. Appids are unique across
// a deployment, so the keys do not name the platform. Expiry uses Redis's
// clock against the token's ExpiresAt.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisStore returns a store on client whose keys start with prefix
// (config.Redis.Prefix). It accepts a *redis.Client, a *redis.ClusterClient
// or any other UniversalClient.
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: client, prefix: prefix}
}

// TokenKey is the Redis key of appid's token.
func (s *RedisStore) TokenKey(appid string) string {
	return s.prefix + "access_token:{" + appid + "}"
}

// LockKey is the Redis key of appid's fetch lock.
func (s *RedisStore) LockKey(appid string) string {
	return s.prefix + "access_token_lock:{" + appid + "}"
}

// deleteIfField deletes the hash KEYS[1] if its field ARGV[1] equals ARGV[2].
var deleteIfField = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// deleteIfValue deletes the string KEYS[1] if it equals ARGV[1].
var deleteIfValue = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// Get returns appid's token.
func (s *RedisStore) Get(ctx context.Context, appid string) (Token, bool, error) {
	vals, err := s.rdb.HMGet(ctx, s.TokenKey(appid), "v", "r", "e").Result()
	if err != nil {
		return Token{}, false, fmt.Errorf("platformtoken: read access token from redis: %w", err)
	}
	value, _ := vals[0].(string)
	if value == "" {
		return Token{}, false, nil
	}
	refresh, rerr := unixMilli(vals[1])
	expires, eerr := unixMilli(vals[2])
	if rerr != nil || eerr != nil {
		return Token{}, false, errors.New("platformtoken: the access token in redis is malformed")
	}
	return Token{Value: value, RefreshAt: refresh, ExpiresAt: expires}, true, nil
}

func unixMilli(v any) (time.Time, error) {
	s, _ := v.(string)
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// Set stores appid's token, expiring at tok.ExpiresAt.
func (s *RedisStore) Set(ctx context.Context, appid string, tok Token) error {
	key := s.TokenKey(appid)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.HSet(ctx, key, "v", tok.Value,
			"r", strconv.FormatInt(tok.RefreshAt.UnixMilli(), 10),
			"e", strconv.FormatInt(tok.ExpiresAt.UnixMilli(), 10))
		p.PExpireAt(ctx, key, tok.ExpiresAt)
		return nil
	})
	if err != nil {
		return fmt.Errorf("platformtoken: store access token in redis: %w", err)
	}
	return nil
}

// Invalidate deletes appid's token if it is still value (atomically).
func (s *RedisStore) Invalidate(ctx context.Context, appid, value string) error {
	if err := deleteIfField.Run(ctx, s.rdb, []string{s.TokenKey(appid)}, "v", value).Err(); err != nil {
		return fmt.Errorf("platformtoken: invalidate access token in redis: %w", err)
	}
	return nil
}

// Lock takes appid's lock with SET NX PX.
func (s *RedisStore) Lock(ctx context.Context, appid string, ttl time.Duration) (string, bool, error) {
	lease, err := newLease()
	if err != nil {
		return "", false, err
	}
	ok, err := s.rdb.SetNX(ctx, s.LockKey(appid), lease, ttl).Result()
	if err != nil {
		return "", false, fmt.Errorf("platformtoken: take the access token lock in redis: %w", err)
	}
	if !ok {
		return "", false, nil
	}
	return lease, true, nil
}

// Unlock releases appid's lock if lease still holds it (atomically).
func (s *RedisStore) Unlock(ctx context.Context, appid, lease string) error {
	if err := deleteIfValue.Run(ctx, s.rdb, []string{s.LockKey(appid)}, lease).Err(); err != nil {
		return fmt.Errorf("platformtoken: release the access token lock in redis: %w", err)
	}
	return nil
}
