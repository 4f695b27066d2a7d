package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// memoryShards spreads the keys over locks, so that concurrent requests
// rarely wait for each other.
const memoryShards = 16

// Memory is a Limiter in this process: one token bucket
// (golang.org/x/time/rate) per key, in a sharded LRU that keeps at most
// maxKeys keys. A key that is busy stays; the keys evicted first are those
// not seen for longest, whose buckets have mostly refilled anyway.
type Memory struct {
	rate   Rate
	now    func() time.Time
	seed   maphash.Seed
	shards [memoryShards]memoryShard
}

type memoryShard struct {
	mu   sync.Mutex
	keys *lru.LRU[string, *rate.Limiter]
}

var _ Limiter = (*Memory)(nil)

// MemoryOption adjusts NewMemory.
type MemoryOption func(*Memory)

// WithMemoryClock sets the clock (tests).
func WithMemoryClock(now func() time.Time) MemoryOption { return func(m *Memory) { m.now = now } }

// NewMemory returns a Limiter of r per key, keeping at most maxKeys keys
// (at least one per shard).
func NewMemory(r Rate, maxKeys int, opts ...MemoryOption) *Memory {
	m := &Memory{rate: r, now: time.Now, seed: maphash.MakeSeed()}
	for _, o := range opts {
		o(m)
	}
	per := max(maxKeys/memoryShards, 1)
	for i := range m.shards {
		m.shards[i].keys, _ = lru.NewLRU[string, *rate.Limiter](per, nil)
	}
	return m
}

// Rate is the limiter's rate.
func (m *Memory) Rate() Rate { return m.rate }

// Allow takes one event from key's bucket if it has one.
func (m *Memory) Allow(_ context.Context, key string) (Result, error) {
	return m.take(key, true), nil
}

// Peek tells whether key's bucket has an event left, taking nothing.
func (m *Memory) Peek(_ context.Context, key string) (Result, error) {
	return m.take(key, false), nil
}

func (m *Memory) take(key string, take bool) Result {
	if m.rate.Off() {
		return Result{Allowed: true, Remaining: -1}
	}
	sh := &m.shards[maphash.String(m.seed, key)%memoryShards]
	now := m.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	lim, ok := sh.keys.Get(key)
	if !ok {
		if !take {
			// An unknown key has its whole burst: no need to remember it.
			return Result{Allowed: true, Remaining: m.rate.N - 1}
		}
		lim = rate.NewLimiter(rate.Every(m.rate.Interval()), m.rate.N)
		sh.keys.Add(key, lim)
	}
	tokens := lim.TokensAt(now)
	if tokens < 1 {
		wait := time.Duration((1 - tokens) * float64(m.rate.Interval()))
		return Result{RetryAfter: max(wait, time.Millisecond)}
	}
	if take {
		lim.AllowN(now, 1)
	}
	return Result{Allowed: true, Remaining: int(tokens - 1)}
}
