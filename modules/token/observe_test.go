package token_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/token/tokentest"
)

// observerLog is a token.Observer that remembers what it heard.
type observerLog struct {
	mu     sync.Mutex
	checks []string
	lags   map[string]int
	live   map[string]bool
}

func (r *observerLog) Verified(strategy string, cache token.CacheOutcome, result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, strategy+" "+string(cache)+" "+result)
}

func (r *observerLog) RevocationReceived(feed string, lag time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lag >= 0 {
		r.lags[feed]++
	}
}

func (r *observerLog) FeedLive(feed string, live bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[feed] = live
}

func (r *observerLog) snapshot() ([]string, map[string]int, map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lags, live := map[string]int{}, map[string]bool{}
	for k, v := range r.lags {
		lags[k] = v
	}
	for k, v := range r.live {
		live[k] = v
	}
	return append([]string(nil), r.checks...), lags, live
}

// TestObserverHearsChecksAndTheFeed: every check is told with how the
// cache answered (or that there is none), the feed's state and the lag of
// the revocations it carries.
func TestObserverHearsChecksAndTheFeed(t *testing.T) {
	for _, tc := range []struct {
		cacheSize int
		want      []string
	}{
		{100, []string{"jwt miss ok", "jwt hit ok", "jwt miss invalid", "jwt miss logged_out"}},
		{0, []string{"jwt off ok", "jwt off ok", "jwt off invalid", "jwt off logged_out"}},
	} {
		rec := &observerLog{lags: map[string]int{}, live: map[string]bool{}}
		client := testutil.SQLite(t)
		cfg := testConfig(t, token.NameJWT, token.AlgHS256)
		cfg.CacheSize = tc.cacheSize
		var st token.Strategy
		app := fxtest.New(t, fx.NopLogger,
			fx.Supply(cfg, config.Redis{}, client, zap.NewNop(), fx.Annotate(rec, fx.As(new(token.Observer)))),
			token.Module, fx.Populate(&st))
		app.RequireStart()

		ctx := context.Background()
		pair, err := st.Issue(ctx, tokentest.EntSubjects(client)(t))
		require.NoError(t, err)
		p, err := st.Verify(ctx, pair.AccessToken)
		require.NoError(t, err)
		_, err = st.Verify(ctx, pair.AccessToken)
		require.NoError(t, err)
		_, err = st.Verify(ctx, "not-a-token")
		require.Error(t, err)
		require.NoError(t, st.Revoke(ctx, p))
		_, err = st.Verify(ctx, pair.AccessToken)
		require.Error(t, err)

		checks, _, live := rec.snapshot()
		require.Equal(t, tc.want, checks, "cache size %d", tc.cacheSize)
		require.True(t, live["poll"], "the poll feed is live")
		testutil.Eventually(t, 5*time.Second, func() bool {
			_, lags, _ := rec.snapshot()
			return lags["poll"] > 0
		}, "the revocation came back through the poll and its lag was told")
		app.RequireStop()
		_, _, live = rec.snapshot()
		require.False(t, live["poll"], "a stopped feed is not live")
	}
}

// fakeStrategy verifies every token as user 1's.
type fakeStrategy struct{ token.Strategy }

func (fakeStrategy) Name() string { return "fake" }

func (fakeStrategy) Verify(context.Context, string) (token.Principal, error) {
	return token.Principal{UserID: 1, SessionID: "s", ExpiresAt: time.Now().Add(time.Hour)}, nil
}

// TestObserverHearsTheBypass: while the feed cannot vouch for revocations,
// the cache is bypassed, and says so.
func TestObserverHearsTheBypass(t *testing.T) {
	rec := &observerLog{lags: map[string]int{}, live: map[string]bool{}}
	feed := token.NewPollFeed(testutil.SQLite(t), time.Second, nil) // not started: not live
	feed.SetObserver(rec)
	c, err := token.NewCached(fakeStrategy{}, feed, token.CacheOptions{Size: 10, Observer: rec})
	require.NoError(t, err)
	defer c.Close()
	for range 2 {
		_, err := c.Verify(context.Background(), "t")
		require.NoError(t, err)
	}
	checks, _, live := rec.snapshot()
	require.Equal(t, []string{"fake bypass ok", "fake bypass ok"}, checks)
	require.False(t, live["poll"])
}
