package platformtoken

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// stores are the Store implementations every contract test runs against.
var stores = []struct {
	name string
	make func(t *testing.T) Store
}{
	{"memory", func(t *testing.T) Store { return NewMemoryStore() }},
	{"redis", func(t *testing.T) Store {
		rdb, prefix := testutil.Redis(t)
		return NewRedisStore(rdb, prefix)
	}},
}

func TestStoreContract(t *testing.T) {
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
				require.NoError(t, s.Set(ctx, "1101", tok("B")))
				a, _, _ := s.Get(ctx, "wxa")
				b, _, _ := s.Get(ctx, "1101")
				assert.Equal(t, "A", a.Value)
				assert.Equal(t, "B", b.Value)
				lease, ok, err := s.Lock(ctx, "wxa", time.Minute)
				require.NoError(t, err)
				require.True(t, ok)
				_, ok, err = s.Lock(ctx, "1101", time.Minute)
				require.NoError(t, err)
				assert.True(t, ok, "each appid has its own lock")
				require.NoError(t, s.Invalidate(ctx, "1101", "B"))
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

func TestRedisKeysAreByAppIDInOneSlot(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	ctx := context.Background()
	var fetches atomic.Int64
	fetch := func(context.Context) (string, time.Duration, error) {
		return "T" + string(rune('0'+fetches.Add(1))), time.Hour, nil
	}
	a := New("wxa", NewRedisStore(rdb, prefix), fetch)
	b := New("1101", NewRedisStore(rdb, prefix), fetch)
	ta, err := a.AccessToken(ctx)
	require.NoError(t, err)
	tb, err := b.AccessToken(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, ta, tb)
	assert.EqualValues(t, 2, fetches.Load(), "two apps, two tokens")

	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{prefix + "access_token:{wxa}", prefix + "access_token:{1101}"}, keys)
	s := NewRedisStore(rdb, prefix)
	for _, appid := range []string{"wxa", "1101", "odd{id}"} {
		assert.Equal(t, hashTag(s.TokenKey(appid)), hashTag(s.LockKey(appid)), "token and lock of one app share a cluster slot")
	}
	assert.Equal(t, "wxa", hashTag(s.TokenKey("wxa")))
}

// hashTag is the part of key Redis Cluster hashes: the text between the
// first "{" and the next "}", when not empty; else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}
