package wechatpush

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Seen remembers the pushes already handled, so that WeChat's retries and
// replayed requests act once. Claim returns true for the first caller of a
// key within ttl; Release forgets a claim whose work failed, so that
// WeChat's retry is handled.
type Seen interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Release(ctx context.Context, key string) error
}

// NewRedisSeen keeps the claims in Redis (shared by the fleet), under
// prefix + "push:" + a digest of the key.
func NewRedisSeen(rdb redis.UniversalClient, prefix string) Seen {
	return &redisSeen{rdb: rdb, prefix: prefix + "push:"}
}

type redisSeen struct {
	rdb    redis.UniversalClient
	prefix string
}

func (r *redisSeen) key(k string) string {
	sum := sha256.Sum256([]byte(k))
	return r.prefix + hex.EncodeToString(sum[:16])
}

func (r *redisSeen) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return r.rdb.SetNX(ctx, r.key(key), 1, ttl).Result()
}

func (r *redisSeen) Release(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return r.rdb.Del(ctx, r.key(key)).Err()
}

// NewMemorySeen keeps at most size claims in memory (one instance only);
// when it is full the oldest claim goes first.
func NewMemorySeen(size int, now func() time.Time) Seen {
	if now == nil {
		now = time.Now
	}
	return &memorySeen{size: max(size, 1), now: now, byKey: map[string]*list.Element{}, order: list.New()}
}

type memorySeen struct {
	mu    sync.Mutex
	size  int
	now   func() time.Time
	byKey map[string]*list.Element
	order *list.List // of *claim, oldest first
}

type claim struct {
	key   string
	until time.Time
}

func (m *memorySeen) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e, ok := m.byKey[key]; ok {
		if now.Before(e.Value.(*claim).until) {
			return false, nil
		}
		m.remove(e)
	}
	for m.order.Len() >= m.size {
		m.remove(m.order.Front())
	}
	m.byKey[key] = m.order.PushBack(&claim{key: key, until: now.Add(ttl)})
	return true, nil
}

func (m *memorySeen) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byKey[key]; ok {
		m.remove(e)
	}
	return nil
}

func (m *memorySeen) remove(e *list.Element) {
	delete(m.byKey, e.Value.(*claim).key)
	m.order.Remove(e)
}
