package token

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Cached is a Strategy that remembers verified access tokens in memory, so
// that verifying a token seen before touches no network.
//
// It is bounded (oldest entries go first when a shard is full), an entry
// never outlives its token, and a revocation makes the session's entries
// unusable: at once on this instance, within a second on the others through
// the [Feed]. While the feed cannot vouch that no revocation was missed,
// Cached passes every call through and keeps nothing.
//
// Memory: an entry is keyed by a 128-bit SHA-256 digest of the token (not
// the token: a JWT has some 330 characters), holds the Principal and a slot
// of the insertion ring, about 270 bytes whatever the strategy; there is no
// per-session or per-user index. Memory grows with the entries, not with
// the configured size. A revocation is kept as a mark (session or user →
// the epoch it happened in) that refuses older entries, until every entry
// it could concern has expired.
type Cached struct {
	inner Strategy
	now   func() time.Time
	obs   Observer

	shards []cacheShard
	mask   uint64

	// epoch changes with every revocation; an entry remembers the epoch its
	// verification began in, and a mark of a later epoch refuses it.
	epoch atomic.Uint64
	live  atomic.Bool
	// maxExp is the latest expiry (unix ns) of any entry ever inserted: a
	// mark is needed no longer than that.
	maxExp atomic.Int64

	marksMu   sync.RWMutex
	sessions  map[string]mark
	users     map[int]mark
	nMarks    atomic.Int64
	nextPrune time.Time

	unsubscribe func()
}

type mark struct {
	epoch uint64
	until int64 // unix ns
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
	// Observer hears every Verify and how the cache answered (metrics);
	// nil hears nothing.
	Observer Observer
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
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	n := 1
	for n < 64 && n*2*16 <= o.Size {
		n *= 2
	}
	c := &Cached{inner: inner, now: o.Now, obs: o.Observer, shards: make([]cacheShard, n), mask: uint64(n - 1),
		sessions: map[string]mark{}, users: map[int]mark{}}
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

// Issue passes through; sessions the policy ends reach the cache through
// the feed.
func (c *Cached) Issue(ctx context.Context, s Subject) (Pair, error) { return c.inner.Issue(ctx, s) }

// Refresh passes through; a reuse revokes the family through the feed.
func (c *Cached) Refresh(ctx context.Context, refreshToken string) (Pair, error) {
	return c.inner.Refresh(ctx, refreshToken)
}

// Sessions passes through.
func (c *Cached) Sessions(ctx context.Context, userID int) ([]SessionInfo, error) {
	return c.inner.Sessions(ctx, userID)
}

// Verify answers from memory when it can.
func (c *Cached) Verify(ctx context.Context, accessToken string) (Principal, error) {
	if !c.live.Load() {
		p, err := c.inner.Verify(ctx, accessToken)
		c.obs.Verified(c.inner.Name(), CacheBypass, VerifyResult(err))
		return p, err
	}
	p, hit, err := c.verify(ctx, accessToken)
	outcome := CacheMiss
	if hit {
		outcome = CacheHit
	}
	c.obs.Verified(c.inner.Name(), outcome, VerifyResult(err))
	return p, err
}

// verify answers from memory (hit) or asks the inner strategy and keeps
// its answer.
func (c *Cached) verify(ctx context.Context, accessToken string) (_ Principal, hit bool, _ error) {
	key := keyOf(accessToken)
	s := &c.shards[binary.LittleEndian.Uint64(key[:8])&c.mask]
	s.mu.RLock()
	e, ok := s.m[key]
	s.mu.RUnlock()
	now := c.now()
	if ok {
		if now.Before(e.p.ExpiresAt) && !c.marked(&e) {
			return e.p, true, nil
		}
		s.drop(key, e.seq)
	}
	epoch := c.epoch.Load()
	p, err := c.inner.Verify(ctx, accessToken)
	if err != nil {
		return p, false, err
	}
	if now.Before(p.ExpiresAt) {
		// maxExp first: an Evict that reads it before this update has
		// already moved the epoch, so the check below keeps the entry out.
		for exp := p.ExpiresAt.UnixNano(); ; {
			old := c.maxExp.Load()
			if exp <= old || c.maxExp.CompareAndSwap(old, exp) {
				break
			}
		}
		s.mu.Lock()
		if c.live.Load() && c.epoch.Load() == epoch {
			s.put(key, p, epoch)
		}
		s.mu.Unlock()
	}
	return p, false, nil
}

// marked reports whether a revocation after e's verification concerns it.
func (c *Cached) marked(e *cacheEntry) bool {
	if c.nMarks.Load() == 0 {
		return false
	}
	c.marksMu.RLock()
	defer c.marksMu.RUnlock()
	if m, ok := c.sessions[e.p.SessionID]; ok && m.epoch > e.epoch {
		return true
	}
	if m, ok := c.users[e.p.UserID]; ok && m.epoch > e.epoch {
		return true
	}
	return false
}

// Revoke revokes through the inner strategy and forgets the session here.
func (c *Cached) Revoke(ctx context.Context, p Principal) error {
	err := c.inner.Revoke(ctx, p)
	c.Evict(Revoked{UserID: p.UserID, SessionIDs: []string{p.SessionID}})
	return err
}

// RevokeSession revokes through the inner strategy and forgets the session here.
func (c *Cached) RevokeSession(ctx context.Context, userID int, sessionID string, reason Reason) error {
	err := c.inner.RevokeSession(ctx, userID, sessionID, reason)
	if err == nil {
		c.Evict(Revoked{UserID: userID, SessionIDs: []string{sessionID}})
	}
	return err
}

// RevokeAll revokes through the inner strategy and forgets the user here.
func (c *Cached) RevokeAll(ctx context.Context, userID int, reason Reason) error {
	err := c.inner.RevokeAll(ctx, userID, reason)
	c.Evict(Revoked{UserID: userID, AllSessions: true})
	return err
}

// Evict makes the entries of the sessions r names unusable.
func (c *Cached) Evict(r Revoked) {
	now := c.now().UnixNano()
	c.marksMu.Lock()
	defer c.marksMu.Unlock()
	epoch := c.epoch.Add(1) // before reading maxExp: see Verify
	m := mark{epoch: epoch, until: c.maxExp.Load()}
	if m.until > now { // else nothing cached can still be valid
		for _, sid := range r.SessionIDs {
			c.sessions[strings.Clone(sid)] = m // the caller's string may alias a reused buffer
		}
		if r.AllSessions {
			c.users[r.UserID] = m
		}
	}
	if now >= c.nextPrune.UnixNano() {
		c.nextPrune = time.Unix(0, now).Add(time.Minute)
		for k, v := range c.sessions {
			if v.until <= now {
				delete(c.sessions, k)
			}
		}
		for k, v := range c.users {
			if v.until <= now {
				delete(c.users, k)
			}
		}
	}
	c.nMarks.Store(int64(len(c.sessions) + len(c.users)))
}

// Reset drops every entry; while live is false nothing is cached.
func (c *Cached) Reset(live bool) {
	c.live.Store(live)
	c.epoch.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.init(s.size)
		s.mu.Unlock()
	}
	c.marksMu.Lock()
	clear(c.sessions)
	clear(c.users)
	c.nMarks.Store(0)
	c.marksMu.Unlock()
}

// cacheKey is the first 128 bits of the token's SHA-256: finding another
// token with the key of a cached one is a second preimage, out of reach;
// the key holds no secret a heap dump could replay.
type cacheKey [16]byte

func keyOf(tok string) cacheKey {
	sum := sha256.Sum256([]byte(tok))
	return cacheKey(sum[:16])
}

type cacheEntry struct {
	p     Principal
	epoch uint64
	seq   uint64
}

type ringSlot struct {
	key cacheKey
	seq uint64
}

// cacheShard is a map of tokens with a ring of insertion order: the oldest
// entry is the first to go, and is the one closest to expiry. The ring
// grows to the shard's size, then turns. The padding keeps neighbouring
// shards' locks off one cache line.
type cacheShard struct {
	mu   sync.RWMutex
	m    map[cacheKey]cacheEntry
	ring []ringSlot
	size int
	head int
	seq  uint64
	_    [64]byte
}

func (s *cacheShard) init(size int) {
	s.m = map[cacheKey]cacheEntry{}
	s.ring = nil
	s.size = size
	s.head = 0
}

// put inserts under the write lock.
func (s *cacheShard) put(key cacheKey, p Principal, epoch uint64) {
	if s.size == 0 {
		return
	}
	s.seq++
	slot := ringSlot{key: key, seq: s.seq}
	if len(s.ring) < s.size {
		s.ring = append(s.ring, slot)
	} else {
		oldest := s.ring[s.head]
		if e, ok := s.m[oldest.key]; ok && e.seq == oldest.seq {
			delete(s.m, oldest.key)
		}
		s.ring[s.head] = slot
		s.head = (s.head + 1) % s.size
	}
	s.m[key] = cacheEntry{p: p, epoch: epoch, seq: s.seq}
}

// drop removes an entry if it is still the one that was read; its ring slot
// stays and is skipped when it comes round.
func (s *cacheShard) drop(key cacheKey, seq uint64) {
	s.mu.Lock()
	if e, ok := s.m[key]; ok && e.seq == seq {
		delete(s.m, key)
	}
	s.mu.Unlock()
}
