package wechat

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
)

// stores are the TokenStore implementations every contract test runs against.
var stores = []struct {
	name string
	make func(t *testing.T) TokenStore
}{
	{"memory", func(t *testing.T) TokenStore { return NewMemoryStore() }},
	{"redis", func(t *testing.T) TokenStore {
		rdb, prefix := testutil.Redis(t)
		return NewRedisStore(rdb, prefix)
	}},
}

func TestTokenStoreContract(t *testing.T) {
	ctx := context.Background()
	// Millisecond precision is what Redis keeps.
	now := time.Now().Truncate(time.Millisecond)
	tok := func(v string) Token {
		return Token{Value: v, RefreshAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)}
	}
	for _, impl := range stores {
		t.Run(impl.name, func(t *testing.T) {
			t.Run("empty", func(t *testing.T) {
				s := impl.make(t)
				_, ok, err := s.Get(ctx, "wxa")
				require.NoError(t, err)
				assert.False(t, ok)
			})
			t.Run("set then get, replace", func(t *testing.T) {
				s := impl.make(t)
				require.NoError(t, s.Set(ctx, "wxa", tok("A1")))
				got, ok, err := s.Get(ctx, "wxa")
				require.NoError(t, err)
				require.True(t, ok)
				assert.Equal(t, "A1", got.Value)
				assert.True(t, got.RefreshAt.Equal(now.Add(time.Hour)))
				assert.True(t, got.ExpiresAt.Equal(now.Add(2*time.Hour)))
				require.NoError(t, s.Set(ctx, "wxa", tok("A2")))
				got, _, _ = s.Get(ctx, "wxa")
				assert.Equal(t, "A2", got.Value)
			})
			t.Run("appids do not share", func(t *testing.T) {
				s := impl.make(t)
				require.NoError(t, s.Set(ctx, "wxa", tok("A")))
				require.NoError(t, s.Set(ctx, "wxb", tok("B")))
				a, _, _ := s.Get(ctx, "wxa")
				b, _, _ := s.Get(ctx, "wxb")
				assert.Equal(t, "A", a.Value)
				assert.Equal(t, "B", b.Value)
				lease, ok, err := s.Lock(ctx, "wxa", time.Minute)
				require.NoError(t, err)
				require.True(t, ok)
				_, ok, err = s.Lock(ctx, "wxb", time.Minute)
				require.NoError(t, err)
				assert.True(t, ok, "each appid has its own lock")
				require.NoError(t, s.Invalidate(ctx, "wxb", "B"))
				_, ok, _ = s.Get(ctx, "wxa")
				assert.True(t, ok)
				require.NoError(t, s.Unlock(ctx, "wxa", lease))
			})
			t.Run("invalidate is compare-and-delete", func(t *testing.T) {
				s := impl.make(t)
				require.NoError(t, s.Set(ctx, "wxa", tok("new")))
				require.NoError(t, s.Invalidate(ctx, "wxa", "old"))
				got, ok, _ := s.Get(ctx, "wxa")
				require.True(t, ok, "a newer token survives the invalidation of an older one")
				assert.Equal(t, "new", got.Value)
				require.NoError(t, s.Invalidate(ctx, "wxa", "new"))
				_, ok, _ = s.Get(ctx, "wxa")
				assert.False(t, ok)
				require.NoError(t, s.Invalidate(ctx, "wxa", "new"), "invalidating nothing is fine")
			})
			t.Run("lock is exclusive and released by its lease only", func(t *testing.T) {
				s := impl.make(t)
				lease, ok, err := s.Lock(ctx, "wxa", time.Minute)
				require.NoError(t, err)
				require.True(t, ok)
				require.NotEmpty(t, lease)
				_, ok, err = s.Lock(ctx, "wxa", time.Minute)
				require.NoError(t, err)
				assert.False(t, ok)
				require.NoError(t, s.Unlock(ctx, "wxa", "someone-else"))
				_, ok, _ = s.Lock(ctx, "wxa", time.Minute)
				assert.False(t, ok, "a wrong lease does not release")
				require.NoError(t, s.Unlock(ctx, "wxa", lease))
				lease2, ok, _ := s.Lock(ctx, "wxa", time.Minute)
				assert.True(t, ok)
				assert.NotEqual(t, lease, lease2)
			})
			t.Run("lock expires", func(t *testing.T) {
				s := impl.make(t)
				_, ok, err := s.Lock(ctx, "wxa", 50*time.Millisecond)
				require.NoError(t, err)
				require.True(t, ok)
				testutil.Eventually(t, 5*time.Second, func() bool {
					_, ok, _ := s.Lock(ctx, "wxa", time.Minute)
					return ok
				}, "the lock of a holder that died is taken again after its TTL")
			})
			t.Run("one of many concurrent lockers wins", func(t *testing.T) {
				s := impl.make(t)
				var wins atomic.Int64
				var wg sync.WaitGroup
				for range 50 {
					wg.Go(func() {
						if _, ok, err := s.Lock(ctx, "wxa", time.Minute); err == nil && ok {
							wins.Add(1)
						}
					})
				}
				wg.Wait()
				assert.EqualValues(t, 1, wins.Load())
			})
		})
	}
}

// lockWatch wraps a store and closes contended the first time Lock finds
// the lock taken, i.e. once another instance is waiting for the holder.
type lockWatch struct {
	TokenStore
	once      *sync.Once
	contended chan struct{}
}

func (w lockWatch) Lock(ctx context.Context, appid string, ttl time.Duration) (string, bool, error) {
	lease, ok, err := w.TokenStore.Lock(ctx, appid, ttl)
	if err == nil && !ok {
		w.once.Do(func() { close(w.contended) })
	}
	return lease, ok, err
}

func TestRedisFleetFetchesOnce(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	fleetFetchesOnce(t, rdb, prefix)
}

// fleetFetchesOnce: two instances sharing rdb fetch one token between them.
func fleetFetchesOnce(t *testing.T, rdb redis.UniversalClient, prefix string) {
	f := newFake(t)
	once, contended := &sync.Once{}, make(chan struct{})
	// The fetch waits until the other instance has found the lock taken, so
	// the two instances really overlap.
	f.handle(pathStableToken, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-contended:
		case <-time.After(5 * time.Second):
		}
		f.tokenHandler(w, r)
	})
	var instances []*HTTPClient
	for range 2 {
		store := lockWatch{NewRedisStore(rdb, prefix), once, contended}
		instances = append(instances, f.client(t, nil, WithTokenStore(store)))
	}

	const perInstance = 100
	tokens := make(chan string, 2*perInstance)
	var wg sync.WaitGroup
	for _, c := range instances {
		for range perInstance {
			wg.Go(func() {
				tok, err := c.AccessToken(context.Background())
				assert.NoError(t, err)
				tokens <- tok
			})
		}
	}
	wg.Wait()
	close(tokens)

	assert.Equal(t, 1, f.fetches(), "one fetch for the whole fleet")
	seen := map[string]bool{}
	for tok := range tokens {
		seen[tok] = true
	}
	assert.Len(t, seen, 1, "every caller on every instance got the same token")

	ctx := context.Background()
	store := NewRedisStore(rdb, prefix)
	n, err := rdb.Exists(ctx, store.lockKey(testAppID)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the lock is released")
	ttl, err := rdb.PTTL(ctx, store.tokenKey(testAppID)).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 7000*time.Second, "the token key expires with the token")
}

func TestRedisKeysAreByAppID(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	f := newFake(t)
	ctx := context.Background()
	store := NewRedisStore(rdb, prefix)
	a := f.client(t, nil, WithTokenStore(store))
	b := f.client(t, func(c *config.WeChat) { c.AppID = "wxsecondapp000000" }, WithTokenStore(NewRedisStore(rdb, prefix)))
	ta, err := a.AccessToken(ctx)
	require.NoError(t, err)
	tb, err := b.AccessToken(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, ta, tb)
	assert.Equal(t, 2, f.fetches(), "two apps, two tokens")

	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		prefix + "wechat:access_token:" + testAppID,
		prefix + "wechat:access_token:wxsecondapp000000",
	}, keys)
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, prefix))
	}
}

func TestRedisStoreRejectionRereadsTheFleetToken(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	f := newFake(t)
	ctx := context.Background()
	a := f.client(t, nil, WithTokenStore(NewRedisStore(rdb, prefix)))
	b := f.client(t, nil, WithTokenStore(NewRedisStore(rdb, prefix)))
	stale, err := a.AccessToken(ctx)
	require.NoError(t, err)
	_, err = b.AccessToken(ctx) // b caches the same token
	require.NoError(t, err)
	f.revoke(stale)

	_, err = a.GetPhoneNumber(ctx, "c") // a: 40001, invalidate, fetch, retry
	require.NoError(t, err)
	_, err = b.GetPhoneNumber(ctx, "c") // b: 40001, invalidate (no-op), re-read a's token, retry
	require.NoError(t, err)
	assert.Equal(t, 2, f.fetches(), "b re-read a's new token rather than fetching (and knocking a out)")
	assert.Equal(t, 4, f.count(pathPhoneNumber))
}

func TestRedisStoreDownFallsBack(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	f := newFake(t)
	c := f.client(t, nil, WithTokenStore(NewRedisStore(rdb, "x:")))
	_, err := c.GetPhoneNumber(context.Background(), "c")
	require.NoError(t, err)
}
