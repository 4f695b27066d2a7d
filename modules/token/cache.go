package token

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Cached is a Strategy that remembers verified access tokens in memory, so
// that verifying a token seen before touches no network.
//
// It is bounded (oldest entries go first when a shard is full), an entry
// never outlives its token, and a revocation drops the session's entries:
// at once on this instance, within a second on the others through the
// [Feed]. While the feed cannot vouch that no revocation was missed, Cached
// passes every call through and keeps nothing.
type Cached struct {
	inner Strategy
	now   func() time.Time

	seed   maphash.Seed
	shards []cacheShard
	mask   uint64

	// epoch changes with every eviction; a verification that began before
	// an eviction must not insert its result afterwards.
	epoch atomic.Uint64
	live  atomic.Bool

	unsubscribe func()
}

var (
	_ Strategy   = (*Cached)(nil)
	_ Subscriber = (*Cached)(nil)
)

// CacheOptions configure NewCached.
type CacheOptions struct {
	// Size is the most entries kept; it must be positive.
	Size int
	// Now is the clock; nil means time.Now. Use the inner strategy's.
	Now func() time.Time
}

// NewCached puts a cache in front of inner. feed must be the feed inner
// publishes its revocations to; the cache subscribes to it until Close.
func NewCached(inner Strategy, feed Feed, o CacheOptions) (*Cached, error) {
	if inner == nil || feed == nil {
		return nil, errors.New("token: NewCached needs a strategy and the feed it publishes to")
	}
	if o.Size <= 0 {
		return nil, errors.New("token: the cache size must be positive")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	n := 1
	for n < 64 && n*2*16 <= o.Size {
		n *= 2
	}
	c := &Cached{inner: inner, now: o.Now, seed: maphash.MakeSeed(), shards: make([]cacheShard, n), mask: uint64(n - 1)}
	for i := range c.shards {
		size := o.Size / n
		if i < o.Size%n {
			size++
		}
		c.shards[i].init(size)
	}
	c.unsubscribe = feed.Subscribe(c)
	return c, nil
}

// Close stops following the feed; the cache must not be used afterwards.
func (c *Cached) Close() { c.unsubscribe() }

// String describes the cache without its content.
func (c *Cached) String() string { return fmt.Sprintf("token.Cached{%s}", c.inner.Name()) }

// Name is the inner strategy's.
func (c *Cached) Name() string { return c.inner.Name() }

// Inner is the strategy behind the cache.
func (c *Cached) Inner() Strategy { return c.inner }

// Len is the number of entries held.
func (c *Cached) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Issue passes through.
func (c *Cached) Issue(ctx context.Context, s Subject) (Pair, error) { return c.inner.Issue(ctx, s) }

// Refresh passes through; a reuse revokes the family through the feed.
func (c *Cached) Refresh(ctx context.Context, refreshToken string) (Pair, error) {
	return c.inner.Refresh(ctx, refreshToken)
}

// Verify answers from memory when it can.
func (c *Cached) Verify(ctx context.Context, accessToken string) (Principal, error) {
	if !c.live.Load() {
		return c.inner.Verify(ctx, accessToken)
	}
	s := &c.shards[maphash.String(c.seed, accessToken)&c.mask]
	s.mu.RLock()
	e := s.m[accessToken]
	s.mu.RUnlock()
	now := c.now()
	if e != nil {
		if now.Before(e.p.ExpiresAt) {
			return e.p, nil
		}
		s.drop(accessToken, e)
	}
	epoch := c.epoch.Load()
	p, err := c.inner.Verify(ctx, accessToken)
	if err != nil {
		return p, err
	}
	if now.Before(p.ExpiresAt) {
		s.mu.Lock()
		if c.live.Load() && c.epoch.Load() == epoch {
			s.put(strings.Clone(accessToken), p)
		}
		s.mu.Unlock()
	}
	return p, nil
}

// Revoke revokes through the inner strategy and forgets the session here.
func (c *Cached) Revoke(ctx context.Context, p Principal) error {
	err := c.inner.Revoke(ctx, p)
	c.Evict(Revoked{UserID: p.UserID, SessionIDs: []string{p.SessionID}})
	return err
}

// RevokeAll revokes through the inner strategy and forgets the user here.
func (c *Cached) RevokeAll(ctx context.Context, userID int) error {
	err := c.inner.RevokeAll(ctx, userID)
	c.Evict(Revoked{UserID: userID, AllSessions: true})
	return err
}

// Evict drops the entries of the sessions r names.
func (c *Cached) Evict(r Revoked) {
	c.epoch.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if r.AllSessions {
			for sid := range s.byUser[r.UserID] {
				s.dropSession(sid)
			}
		}
		for _, sid := range r.SessionIDs {
			s.dropSession(sid)
		}
		s.mu.Unlock()
	}
}

// Reset drops every entry; while live is false nothing is cached.
func (c *Cached) Reset(live bool) {
	c.live.Store(live)
	c.epoch.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.init(len(s.ring))
		s.mu.Unlock()
	}
}

type cacheEntry struct {
	p   Principal
	seq uint64
}

type ringSlot struct {
	key string
	seq uint64
}

// cacheShard is a map of tokens with a ring of insertion order (the oldest
// entry is the first to go, and is the one closest to expiry) and indexes by
// session and user for revocations. The padding keeps neighbouring shards'
// locks off one cache line.
type cacheShard struct {
	mu        sync.RWMutex
	m         map[string]*cacheEntry
	ring      []ringSlot
	head, n   int
	seq       uint64
	bySession map[string]map[string]struct{}
	byUser    map[int]map[string]struct{}
	_         [64]byte
}

func (s *cacheShard) init(size int) {
	s.m = make(map[string]*cacheEntry, size)
	s.ring = make([]ringSlot, size)
	s.head, s.n = 0, 0
	s.bySession = map[string]map[string]struct{}{}
	s.byUser = map[int]map[string]struct{}{}
}

// put inserts under the write lock.
func (s *cacheShard) put(key string, p Principal) {
	if old, ok := s.m[key]; ok {
		s.remove(key, old)
	}
	if len(s.ring) == 0 {
		return
	}
	if s.n == len(s.ring) {
		oldest := s.ring[s.head]
		s.ring[s.head] = ringSlot{}
		s.head = (s.head + 1) % len(s.ring)
		s.n--
		if e, ok := s.m[oldest.key]; ok && e.seq == oldest.seq {
			s.remove(oldest.key, e)
		}
	}
	s.seq++
	s.ring[(s.head+s.n)%len(s.ring)] = ringSlot{key: key, seq: s.seq}
	s.n++
	s.m[key] = &cacheEntry{p: p, seq: s.seq}
	keys := s.bySession[p.SessionID]
	if keys == nil {
		keys = map[string]struct{}{}
		s.bySession[p.SessionID] = keys
		sids := s.byUser[p.UserID]
		if sids == nil {
			sids = map[string]struct{}{}
			s.byUser[p.UserID] = sids
		}
		sids[p.SessionID] = struct{}{}
	}
	keys[key] = struct{}{}
}

// drop removes an expired entry if it is still the one that was read.
func (s *cacheShard) drop(key string, e *cacheEntry) {
	s.mu.Lock()
	if s.m[key] == e {
		s.remove(key, e)
	}
	s.mu.Unlock()
}

func (s *cacheShard) dropSession(sid string) {
	for key := range s.bySession[sid] {
		s.remove(key, s.m[key])
	}
}

// remove deletes an entry and its index references; its ring slot stays
// and is skipped when it comes round.
func (s *cacheShard) remove(key string, e *cacheEntry) {
	delete(s.m, key)
	sid, uid := e.p.SessionID, e.p.UserID
	keys := s.bySession[sid]
	delete(keys, key)
	if len(keys) == 0 {
		delete(s.bySession, sid)
		sids := s.byUser[uid]
		delete(sids, sid)
		if len(sids) == 0 {
			delete(s.byUser, uid)
		}
	}
}
