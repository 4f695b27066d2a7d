package platformtoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// platform is a fake platform: it issues numbered tokens, counts fetches,
// and accepts only tokens it has not revoked.
type platform struct {
	mu       sync.Mutex
	seq      int
	valid    map[string]bool
	lifetime time.Duration
	fail     error         // the next fetch fails with it
	gate     chan struct{} // when set, a fetch waits for it
}

var errRejected = errors.New("token rejected")

func newPlatform() *platform {
	return &platform{valid: map[string]bool{}, lifetime: 2 * time.Hour}
}

func (p *platform) fetch(ctx context.Context) (string, time.Duration, error) {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", 0, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	if p.fail != nil {
		err := p.fail
		p.fail = nil
		return "", 0, err
	}
	tok := fmt.Sprintf("TOKEN-%d-must-not-leak", p.seq)
	p.valid[tok] = true
	return tok, p.lifetime, nil
}

func (p *platform) fetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

func (p *platform) revoke(tok string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.valid, tok)
}

// call is a business API that rejects revoked tokens.
func (p *platform) call(calls *atomic.Int64) func(context.Context, string) error {
	return func(_ context.Context, tok string) error {
		calls.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.valid[tok] {
			return errRejected
		}
		return nil
	}
}

func rejected(err error) bool { return errors.Is(err, errRejected) }

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestTokenCachedUntilFiveMinutesBeforeExpiry(t *testing.T) {
	p := newPlatform()
	clk := newClock()
	m := New("wxa", nil, p.fetch, WithClock(clk.Now))
	ctx := context.Background()

	first, err := m.AccessToken(ctx)
	require.NoError(t, err)
	clk.Advance(2*time.Hour - RefreshMargin - time.Second)
	again, err := m.AccessToken(ctx)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Equal(t, 1, p.fetches(), "still fresh one second before the refresh point")

	clk.Advance(time.Second)
	next, err := m.AccessToken(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first, next)
	assert.Equal(t, 2, p.fetches(), "fetched again five minutes before expiry")

	stored, ok, err := m.Store().Get(ctx, "wxa")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, next, stored.Value)
	assert.Equal(t, clk.Now().Add(2*time.Hour), stored.ExpiresAt)
	assert.Equal(t, clk.Now().Add(2*time.Hour-RefreshMargin), stored.RefreshAt)
}

func TestShortLivedTokenRefreshedHalfway(t *testing.T) {
	p := newPlatform()
	p.lifetime = 2 * time.Minute
	clk := newClock()
	m := New("wxa", nil, p.fetch, WithClock(clk.Now))
	ctx := context.Background()
	_, err := m.AccessToken(ctx)
	require.NoError(t, err)
	clk.Advance(59 * time.Second)
	_, _ = m.AccessToken(ctx)
	assert.Equal(t, 1, p.fetches())
	clk.Advance(time.Second)
	_, _ = m.AccessToken(ctx)
	assert.Equal(t, 2, p.fetches())
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	p := newPlatform()
	m := New("wxa", nil, p.fetch)
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { assert.NoError(t, m.Do(context.Background(), p.call(&calls))) })
	}
	wg.Wait()
	assert.Equal(t, 1, p.fetches())
	assert.EqualValues(t, 200, calls.Load())
}

func TestRejectedTokenIsReadAgainAndTheCallRetriedOnce(t *testing.T) {
	ctx := context.Background()

	t.Run("nobody refreshed it: fetch once, retry once", func(t *testing.T) {
		p := newPlatform()
		m := New("wxa", nil, p.fetch, WithRejected(rejected))
		stale, err := m.AccessToken(ctx)
		require.NoError(t, err)
		p.revoke(stale)
		var calls atomic.Int64
		require.NoError(t, m.Do(ctx, p.call(&calls)))
		assert.EqualValues(t, 2, calls.Load(), "one call, one retry")
		assert.Equal(t, 2, p.fetches(), "one new fetch")
	})

	t.Run("another instance refreshed it: re-read, no fetch", func(t *testing.T) {
		p := newPlatform()
		store := NewMemoryStore()
		m := New("wxa", store, p.fetch, WithRejected(rejected))
		stale, err := m.AccessToken(ctx)
		require.NoError(t, err)
		other, _, _ := p.fetch(ctx) // another instance's fetch
		p.revoke(stale)
		require.NoError(t, store.Set(ctx, "wxa", Token{Value: other, RefreshAt: time.Now().Add(time.Hour), ExpiresAt: time.Now().Add(2 * time.Hour)}))

		var calls atomic.Int64
		require.NoError(t, m.Do(ctx, p.call(&calls)))
		assert.EqualValues(t, 2, calls.Load())
		assert.Equal(t, 2, p.fetches(), "the other instance's token was used, none fetched")
		kept, ok, _ := store.Get(ctx, "wxa")
		require.True(t, ok, "compare-and-delete left the other instance's token alone")
		assert.Equal(t, other, kept.Value)
	})

	t.Run("still rejected: only one retry", func(t *testing.T) {
		p := newPlatform()
		m := New("wxa", nil, p.fetch, WithRejected(rejected))
		var calls atomic.Int64
		err := m.Do(ctx, func(context.Context, string) error { calls.Add(1); return errRejected })
		assert.ErrorIs(t, err, errRejected)
		assert.EqualValues(t, 2, calls.Load())
		assert.Equal(t, 2, p.fetches())
	})

	t.Run("other errors are not retried", func(t *testing.T) {
		p := newPlatform()
		m := New("wxa", nil, p.fetch, WithRejected(rejected))
		other := errors.New("invalid code")
		var calls atomic.Int64
		err := m.Do(ctx, func(context.Context, string) error { calls.Add(1); return other })
		assert.ErrorIs(t, err, other)
		assert.EqualValues(t, 1, calls.Load())
		assert.Equal(t, 1, p.fetches())
	})

	t.Run("without a rejection test nothing is retried", func(t *testing.T) {
		p := newPlatform()
		m := New("wxa", nil, p.fetch)
		var calls atomic.Int64
		err := m.Do(ctx, func(context.Context, string) error { calls.Add(1); return errRejected })
		assert.ErrorIs(t, err, errRejected)
		assert.EqualValues(t, 1, calls.Load())
		assert.Equal(t, 1, p.fetches())
	})
}

func TestConcurrentRejectionsFetchOnce(t *testing.T) {
	p := newPlatform()
	m := New("wxa", nil, p.fetch, WithRejected(rejected))
	ctx := context.Background()
	stale, err := m.AccessToken(ctx)
	require.NoError(t, err)
	p.revoke(stale)
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { assert.NoError(t, m.Do(ctx, p.call(&calls))) })
	}
	wg.Wait()
	assert.Equal(t, 2, p.fetches(), "50 rejections of one token: one new fetch")
}

func TestInvalidateOnlyDeletesTheFailedToken(t *testing.T) {
	ctx := context.Background()
	p := newPlatform()
	m := New("wxa", NewMemoryStore(), p.fetch)
	t1, err := m.AccessToken(ctx)
	require.NoError(t, err)
	require.NoError(t, m.Invalidate(ctx, "not-the-current-one"))
	t2, _ := m.AccessToken(ctx)
	assert.Equal(t, t1, t2)
	assert.Equal(t, 1, p.fetches())

	require.NoError(t, m.Invalidate(ctx, t1))
	t3, _ := m.AccessToken(ctx)
	assert.NotEqual(t, t1, t3)
	assert.Equal(t, 2, p.fetches())
}

func TestFailedFetchIsNotCached(t *testing.T) {
	p := newPlatform()
	down := errors.New("platform busy")
	p.fail = down
	m := New("wxa", nil, p.fetch)
	_, err := m.AccessToken(context.Background())
	assert.ErrorIs(t, err, down)
	_, err = m.AccessToken(context.Background())
	assert.NoError(t, err)
}

type unavailableError struct{ cause error }

func (e *unavailableError) Error() string { return "platform unavailable: " + e.cause.Error() }
func (e *unavailableError) Unwrap() error { return e.cause }

func TestCallerGivingUpDoesNotCancelTheSharedFetch(t *testing.T) {
	p := newPlatform()
	p.gate = make(chan struct{})
	m := New("wxa", nil, p.fetch, WithUnavailable(func(err error) error { return &unavailableError{err} }))

	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, err := m.AccessToken(ctxA); errA <- err }()
	errB := make(chan error, 1)
	go func() { _, err := m.AccessToken(context.Background()); errB <- err }()
	cancelA()
	err := <-errA
	assert.ErrorIs(t, err, context.Canceled)
	var ue *unavailableError
	assert.ErrorAs(t, err, &ue, "the platform's own error type")
	close(p.gate)
	assert.NoError(t, <-errB)
	assert.Equal(t, 1, p.fetches())
}

// brokenStore fails every operation, like a Redis that is down.
type brokenStore struct{}

var errBroken = errors.New("store down")

func (brokenStore) Get(context.Context, string) (Token, bool, error) {
	return Token{}, false, errBroken
}
func (brokenStore) Set(context.Context, string, Token) error         { return errBroken }
func (brokenStore) Invalidate(context.Context, string, string) error { return errBroken }
func (brokenStore) Lock(context.Context, string, time.Duration) (string, bool, error) {
	return "", false, errBroken
}
func (brokenStore) Unlock(context.Context, string, string) error { return errBroken }

func TestBrokenStoreStillServesTokens(t *testing.T) {
	p := newPlatform()
	core, logs := observer.New(zap.DebugLevel)
	m := New("wxa", brokenStore{}, p.fetch, WithLogger(zap.New(core)))
	for range 3 {
		_, err := m.AccessToken(context.Background())
		require.NoError(t, err)
	}
	assert.Equal(t, 1, p.fetches(), "kept in the manager's memory")
	assert.NotEmpty(t, logs.FilterMessage("access token store failed; fetching without it").All())
}

func TestRedisDownFallsBack(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	p := newPlatform()
	m := New("wxa", NewRedisStore(rdb, "x:"), p.fetch)
	_, err := m.AccessToken(context.Background())
	require.NoError(t, err)
}

// lockWatch wraps a store and closes contended the first time Lock finds
// the lock taken, i.e. once another instance is waiting for the holder.
type lockWatch struct {
	Store
	once      *sync.Once
	contended chan struct{}
}

func (w lockWatch) Lock(ctx context.Context, appid string, ttl time.Duration) (string, bool, error) {
	lease, ok, err := w.Store.Lock(ctx, appid, ttl)
	if err == nil && !ok {
		w.once.Do(func() { close(w.contended) })
	}
	return lease, ok, err
}

func TestRedisFleetFetchesOnce(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	p := newPlatform()
	once, contended := &sync.Once{}, make(chan struct{})
	// The fetch waits until the other instance has found the lock taken, so
	// the two instances really overlap.
	fetch := func(ctx context.Context) (string, time.Duration, error) {
		select {
		case <-contended:
		case <-time.After(5 * time.Second):
		}
		return p.fetch(ctx)
	}
	var instances []*Manager
	for range 2 {
		instances = append(instances, New("wxa", lockWatch{NewRedisStore(rdb, prefix), once, contended}, fetch))
	}
	const perInstance = 100
	tokens := make(chan string, 2*perInstance)
	var wg sync.WaitGroup
	for _, m := range instances {
		for range perInstance {
			wg.Go(func() {
				tok, err := m.AccessToken(context.Background())
				assert.NoError(t, err)
				tokens <- tok
			})
		}
	}
	wg.Wait()
	close(tokens)
	assert.Equal(t, 1, p.fetches(), "one fetch for the whole fleet")
	seen := map[string]bool{}
	for tok := range tokens {
		seen[tok] = true
	}
	assert.Len(t, seen, 1, "every caller on every instance got the same token")

	ctx := context.Background()
	store := NewRedisStore(rdb, prefix)
	n, err := rdb.Exists(ctx, store.LockKey("wxa")).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the lock is released")
	ttl, err := rdb.PTTL(ctx, store.TokenKey("wxa")).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 7000*time.Second, "the token key expires with the token")
}

func TestRedisRejectionRereadsTheFleetToken(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	p := newPlatform()
	ctx := context.Background()
	a := New("wxa", NewRedisStore(rdb, prefix), p.fetch, WithRejected(rejected))
	b := New("wxa", NewRedisStore(rdb, prefix), p.fetch, WithRejected(rejected))
	stale, err := a.AccessToken(ctx)
	require.NoError(t, err)
	_, err = b.AccessToken(ctx) // b caches the same token
	require.NoError(t, err)
	p.revoke(stale)

	var calls atomic.Int64
	require.NoError(t, a.Do(ctx, p.call(&calls))) // a: rejected, invalidate, fetch, retry
	require.NoError(t, b.Do(ctx, p.call(&calls))) // b: rejected, invalidate (no-op), re-read a's token, retry
	assert.Equal(t, 2, p.fetches(), "b re-read a's new token rather than fetching (and knocking a out)")
	assert.EqualValues(t, 4, calls.Load())
}

func TestTokenNeverPrints(t *testing.T) {
	tok := Token{Value: "ACCESS-TOKEN-must-not-leak", RefreshAt: time.Now(), ExpiresAt: time.Now()}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		assert.NotContains(t, fmt.Sprintf(format, tok), tok.Value, format)
		assert.NotContains(t, fmt.Sprintf(format, struct{ T Token }{tok}), tok.Value, format)
	}
	b, err := json.Marshal(tok)
	require.NoError(t, err)
	assert.NotContains(t, string(b), tok.Value)
	core, logs := observer.New(zap.DebugLevel)
	zap.New(core).Info("x", zap.Object("token", tok), zap.Any("any", tok))
	for _, e := range logs.All() {
		assert.NotContains(t, fmt.Sprint(e.ContextMap()), tok.Value)
	}
}

func TestManagerLogsNeverHoldTheToken(t *testing.T) {
	p := newPlatform()
	core, logs := observer.New(zap.DebugLevel)
	m := New("wxa", nil, p.fetch, WithLogger(zap.New(core)), WithRejected(rejected))
	tok, err := m.AccessToken(context.Background())
	require.NoError(t, err)
	p.revoke(tok)
	var calls atomic.Int64
	require.NoError(t, m.Do(context.Background(), p.call(&calls)))
	require.NotEmpty(t, logs.All())
	for _, e := range logs.All() {
		assert.NotContains(t, e.Message+fmt.Sprint(e.ContextMap()), "must-not-leak")
		assert.Equal(t, "access_token", e.LoggerName)
	}
}

func BenchmarkAccessTokenCached(b *testing.B) {
	m := New("wxa", nil, func(context.Context) (string, time.Duration, error) {
		return "token", time.Hour, nil
	})
	ctx := context.Background()
	if _, err := m.AccessToken(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.AccessToken(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
