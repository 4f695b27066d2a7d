package wechat

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
)

// lockWatch wraps a store and closes contended the first time Lock finds
// the lock taken, i.e. once another instance is waiting for the holder.
type lockWatch struct {
	platformtoken.Store
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
		store := lockWatch{platformtoken.NewRedisStore(rdb, prefix), once, contended}
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
	store := platformtoken.NewRedisStore(rdb, prefix)
	n, err := rdb.Exists(ctx, store.LockKey(testAppID)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the lock is released")
	ttl, err := rdb.PTTL(ctx, store.TokenKey(testAppID)).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 7000*time.Second, "the token key expires with the token")
}

func TestRedisStoreRejectionRereadsTheFleetToken(t *testing.T) {
	rdb, prefix := testutil.Redis(t)
	f := newFake(t)
	ctx := context.Background()
	a := f.client(t, nil, WithTokenStore(platformtoken.NewRedisStore(rdb, prefix)))
	b := f.client(t, nil, WithTokenStore(platformtoken.NewRedisStore(rdb, prefix)))
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
	c := f.client(t, nil, WithTokenStore(platformtoken.NewRedisStore(rdb, "x:")))
	_, err := c.GetPhoneNumber(context.Background(), "c")
	require.NoError(t, err)
}
