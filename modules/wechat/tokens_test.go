package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
)

func TestTokenEndpointSelectedByConfig(t *testing.T) {
	t.Run("stable_token", func(t *testing.T) {
		f := newFake(t)
		_, err := f.client(t, func(c *config.WeChat) { c.StableToken = true }).AccessToken(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, f.count(pathStableToken))
		assert.Zero(t, f.count(pathToken))
		var body map[string]any
		require.NoError(t, json.Unmarshal(f.lastBody(pathStableToken), &body))
		assert.Equal(t, map[string]any{
			"grant_type": "client_credential", "appid": testAppID, "secret": testSecret, "force_refresh": false,
		}, body, "force_refresh is sent, and false")
		assert.Empty(t, f.lastQuery(pathStableToken), "the secret travels in the body only")
	})
	t.Run("classic token", func(t *testing.T) {
		f := newFake(t)
		_, err := f.client(t, func(c *config.WeChat) { c.StableToken = false }).AccessToken(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, f.count(pathToken))
		assert.Zero(t, f.count(pathStableToken))
		q, _ := url.ParseQuery(f.lastQuery(pathToken))
		assert.Equal(t, url.Values{"grant_type": {"client_credential"}, "appid": {testAppID}, "secret": {testSecret}}, q)
	})
}

func TestTokenCachedUntilFiveMinutesBeforeExpiry(t *testing.T) {
	f := newFake(t)
	clock := newClock()
	c := f.client(t, nil, WithClock(clock.Now))
	ctx := context.Background()

	first, err := c.AccessToken(ctx)
	require.NoError(t, err)
	clock.Advance(7200*time.Second - platformtoken.RefreshMargin - time.Second)
	again, err := c.AccessToken(ctx)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Equal(t, 1, f.fetches(), "still fresh one second before the refresh point")

	clock.Advance(time.Second)
	next, err := c.AccessToken(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first, next)
	assert.Equal(t, 2, f.fetches(), "fetched again five minutes before expiry")

	stored, ok, err := c.Tokens().Store().Get(ctx, testAppID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, next, stored.Value)
	assert.Equal(t, clock.Now().Add(7200*time.Second), stored.ExpiresAt)
	assert.Equal(t, clock.Now().Add(7200*time.Second-platformtoken.RefreshMargin), stored.RefreshAt)
}

func TestConcurrentPhoneCallsShareOneTokenFetch(t *testing.T) {
	for _, stable := range []bool{true, false} {
		f := newFake(t)
		c := f.client(t, func(c *config.WeChat) { c.StableToken = stable })
		const callers = 200
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for range callers {
			wg.Go(func() {
				_, err := c.GetPhoneNumber(context.Background(), "c")
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		assert.Equal(t, 1, f.fetches(), "stable=%v", stable)
		assert.Equal(t, callers, f.count(pathPhoneNumber))
	}
}

func TestRejectedTokenIsReadAgainAndTheCallRetriedOnce(t *testing.T) {
	ctx := context.Background()

	t.Run("nobody refreshed it: fetch once, retry once", func(t *testing.T) {
		f := newFake(t)
		c := f.client(t, nil)
		stale, err := c.AccessToken(ctx)
		require.NoError(t, err)
		f.revoke(stale) // e.g. a foreign system fetched a classic token

		_, err = c.GetPhoneNumber(ctx, "c")
		require.NoError(t, err)
		assert.Equal(t, 2, f.count(pathPhoneNumber), "one call, one retry")
		assert.Equal(t, 2, f.fetches(), "one new fetch")
		fresh, _ := c.AccessToken(ctx)
		assert.NotEqual(t, stale, fresh)
	})

	t.Run("another instance refreshed it: re-read, no fetch", func(t *testing.T) {
		f := newFake(t)
		store := platformtoken.NewMemoryStore()
		c := f.client(t, nil, WithTokenStore(store))
		stale, err := c.AccessToken(ctx) // cached in c's memory
		require.NoError(t, err)

		// Another instance fetches a new token (invalidating ours) and stores it.
		other, _ := f.issue()
		f.revoke(stale)
		require.NoError(t, store.Set(ctx, testAppID, platformtoken.Token{Value: other, RefreshAt: time.Now().Add(time.Hour), ExpiresAt: time.Now().Add(2 * time.Hour)}))

		_, err = c.GetPhoneNumber(ctx, "c")
		require.NoError(t, err)
		assert.Equal(t, 2, f.count(pathPhoneNumber))
		assert.Equal(t, 1, f.fetches(), "the other instance's token was used, none fetched")
		kept, ok, _ := store.Get(ctx, testAppID)
		require.True(t, ok, "compare-and-delete left the other instance's token alone")
		assert.Equal(t, other, kept.Value)
	})

	t.Run("still rejected: only one retry", func(t *testing.T) {
		f := newFake(t)
		f.handle(pathPhoneNumber, func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, "text/plain", errcodeBody(42001, "access_token expired rid: 6523a1b2-0f1e2d3c-4b5a6978"))
		})
		c := f.client(t, nil)
		_, err := c.GetPhoneNumber(ctx, "c")
		assert.True(t, IsKind(err, KindAccessToken), "%v", err)
		assert.Equal(t, 2, f.count(pathPhoneNumber))
		assert.Equal(t, 2, f.fetches())
	})

	t.Run("other errors are not retried", func(t *testing.T) {
		f := newFake(t)
		f.handle(pathPhoneNumber, func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, "text/plain", errcodeBody(40029, "invalid code"))
		})
		_, err := f.client(t, nil).GetPhoneNumber(ctx, "c")
		assert.True(t, IsKind(err, KindInvalidCode))
		assert.Equal(t, 1, f.count(pathPhoneNumber))
		assert.Equal(t, 1, f.fetches())
	})
}

func TestConcurrentRejectionsFetchOnce(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil)
	ctx := context.Background()
	stale, err := c.AccessToken(ctx)
	require.NoError(t, err)
	f.revoke(stale)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := c.GetPhoneNumber(ctx, "c")
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 2, f.fetches(), "50 rejections of one token: one new fetch")
}

func TestFailedFetchIsNotCached(t *testing.T) {
	f := newFake(t)
	var failed atomic.Bool
	f.handle(pathStableToken, func(w http.ResponseWriter, r *http.Request) {
		if failed.CompareAndSwap(false, true) {
			writeBody(w, "text/plain", errcodeBody(-1, "system error, rid: 1"))
			return
		}
		f.tokenHandler(w, r)
	})
	c := f.client(t, nil)
	_, err := c.AccessToken(context.Background())
	assert.ErrorIs(t, err, ErrUnavailable)
	_, err = c.AccessToken(context.Background())
	assert.NoError(t, err)
}

func TestCallerGivingUpDoesNotCancelTheSharedFetch(t *testing.T) {
	f := newFake(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	f.handle(pathStableToken, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		f.tokenHandler(w, r)
	})
	c := f.client(t, nil)

	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, err := c.AccessToken(ctxA); errA <- err }()
	<-arrived
	errB := make(chan error, 1)
	go func() { _, err := c.AccessToken(context.Background()); errB <- err }()
	cancelA()
	err := <-errA
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, ErrUnavailable)
	close(release)
	assert.NoError(t, <-errB)
	assert.Equal(t, 1, f.fetches())
}

// brokenStore fails every operation, like a Redis that is down.
type brokenStore struct{}

var errBroken = errors.New("store down")

func (brokenStore) Get(context.Context, string) (platformtoken.Token, bool, error) {
	return platformtoken.Token{}, false, errBroken
}
func (brokenStore) Set(context.Context, string, platformtoken.Token) error { return errBroken }
func (brokenStore) Invalidate(context.Context, string, string) error       { return errBroken }
func (brokenStore) Lock(context.Context, string, time.Duration) (string, bool, error) {
	return "", false, errBroken
}
func (brokenStore) Unlock(context.Context, string, string) error { return errBroken }

func TestBrokenStoreStillServesTokens(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil, WithTokenStore(brokenStore{}))
	for range 3 {
		_, err := c.GetPhoneNumber(context.Background(), "c")
		require.NoError(t, err)
	}
	assert.Equal(t, 1, f.fetches(), "kept in the manager's memory")
}

func BenchmarkCode2Session(b *testing.B) {
	f := newFake(b)
	c := f.client(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Code2Session(ctx, "c"); err != nil {
			b.Fatal(err)
		}
	}
}
