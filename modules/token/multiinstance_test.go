package token_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/token"
)

// instance is one service instance: its own feed and cache over shared
// stores.
type instance struct {
	strategy token.Strategy
	cache    *token.Cached
}

type startStop interface {
	token.Feed
	Start(context.Context) error
	Stop(context.Context) error
}

// newInstance starts an instance the way the fx module wires it: a Redis
// feed when rdb is set, else a poll of the database.
func newInstance(t *testing.T, k kind, s stores, cfg config.Token, feedRedis redis.UniversalClient) instance {
	t.Helper()
	var feed startStop
	if feedRedis != nil {
		feed = token.NewRedisFeed(feedRedis, s.prefix, nil)
	} else {
		feed = token.NewPollFeed(s.client, cfg.RevocationPoll, nil)
	}
	st := build(t, k, s, cfg, token.Options{Feed: feed})
	c, err := token.NewCached(st, feed, token.CacheOptions{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := feed.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := feed.Stop(context.Background()); err != nil {
			t.Errorf("stop feed: %v", err)
		}
	})
	return instance{strategy: c, cache: c}
}

func refusedWithin(t *testing.T, in instance, access, what string) {
	t.Helper()
	testutil.Eventually(t, time.Second, func() bool {
		_, err := in.strategy.Verify(context.Background(), access)
		return errors.Is(err, token.ErrUnauthenticated)
	}, "%s is still accepted by the other instance", what)
}

// TestRevocationReachesOtherInstances: two instances with separate caches
// share the database (and Redis); a revocation on one is honoured by the
// other within a second, whatever the strategy.
func TestRevocationReachesOtherInstances(t *testing.T) {
	type setup struct {
		kind      kind
		withRedis bool
		backend   string
	}
	setups := []setup{
		{kinds[0], false, "mariadb"},     // jwt, deny list and feed in the database
		{kinds[1], true, "mariadb"},      // jwt, deny list and feed in Redis
		{kinds[1], true, backendCluster}, // the same on a Redis Cluster
		{kinds[3], false, "mariadb"},     // db, polled
		{kinds[3], true, "mariadb"},      // db, Redis feed
		{kinds[4], true, backendRedis},   // redis
		{kinds[4], true, backendCluster}, // redis on a Redis Cluster
		// Where the database carries the feed, PostgreSQL too.
		{kinds[0], false, "postgres"},
		{kinds[3], false, "postgres"},
	}
	for _, su := range setups {
		name := su.kind.name + "/" + su.backend
		if su.withRedis {
			name += "+redis"
		}
		if su.kind.strategy == token.NameRedis {
			name = "redis"
		}
		if su.backend == backendCluster {
			name += "-cluster"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := openStores(t, su.kind, su.backend)
			if su.withRedis && s.rdb == nil {
				s.rdb, s.prefix = testutil.Redis(t)
			}
			cfg := testConfig(t, su.kind.strategy, su.kind.alg)
			cfg.RevocationPoll = 500 * time.Millisecond // the default: the promise is 1 s with it
			var feedRedis redis.UniversalClient
			if su.withRedis {
				feedRedis = s.rdb
			}
			a := newInstance(t, su.kind, s, cfg, feedRedis)
			b := newInstance(t, su.kind, s, cfg, feedRedis)
			subjects := subjectsFor(s)
			u, v := subjects(t), subjects(t)

			// A token issued on A verifies on B; both now cache it.
			p1, err := a.strategy.Issue(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			p2, err := a.strategy.Issue(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			other, err := a.strategy.Issue(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []token.Pair{p1, p2, other} {
				verifyOK(t, a.strategy, p.AccessToken)
				verifyOK(t, b.strategy, p.AccessToken)
			}
			if a.cache.Len() != 3 || b.cache.Len() != 3 {
				t.Fatalf("caches hold %d and %d entries, want 3 each", a.cache.Len(), b.cache.Len())
			}

			// Logout on B: A refuses within a second.
			if err := b.strategy.Revoke(ctx, verifyOK(t, b.strategy, p1.AccessToken)); err != nil {
				t.Fatal(err)
			}
			if _, err := b.strategy.Verify(ctx, p1.AccessToken); !errors.Is(err, token.ErrUnauthenticated) {
				t.Fatalf("the revoking instance still accepts the token: %v", err)
			}
			refusedWithin(t, a, p1.AccessToken, "a logged-out token")
			verifyOK(t, a.strategy, p2.AccessToken)

			// Refresh reuse detected on B: A refuses the family within a second.
			q1, err := a.strategy.Refresh(ctx, p2.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			verifyOK(t, a.strategy, q1.AccessToken)
			if _, err := b.strategy.Refresh(ctx, p2.RefreshToken); !errors.Is(err, token.ErrRefreshReused) {
				t.Fatalf("replayed refresh token on the other instance: %v", err)
			}
			refusedWithin(t, a, q1.AccessToken, "a token of a family revoked for reuse")

			// Logout everywhere on A: B refuses within a second.
			p3, err := b.strategy.Issue(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			verifyOK(t, b.strategy, p3.AccessToken)
			if err := a.strategy.RevokeAll(ctx, u.UserID, token.ReasonLoggedOut); err != nil {
				t.Fatal(err)
			}
			refusedWithin(t, b, p3.AccessToken, "a token after logout everywhere")
			verifyOK(t, b.strategy, other.AccessToken)
			verifyOK(t, a.strategy, other.AccessToken)
		})
	}
}

// TestRedisFeedOutage: while the subscription is cut or silent, an instance
// must not serve from its cache what another instance revoked meanwhile.
func TestRedisFeedOutage(t *testing.T) {
	ctx := context.Background()
	for _, k := range []kind{kinds[4], kinds[1]} { // redis; jwt with the deny list in Redis
		for _, mode := range []string{"frozen", "closed"} {
			t.Run(k.name+"/"+mode, func(t *testing.T) { feedOutage(t, ctx, k, mode) })
		}
	}
}

func feedOutage(t *testing.T, ctx context.Context, k kind, mode string) {
	s := openStores(t, k, "mariadb")
	cfg := testConfig(t, k.strategy, k.alg)
	proxy := testutil.NewProxy(t, testutil.RedisAddr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1})
	t.Cleanup(func() { viaProxy.Close() })

	a := newInstance(t, k, s, cfg, viaProxy) // A hears revocations through the proxy
	b := newInstance(t, k, s, cfg, s.rdb)
	subjects := subjectsFor(s)
	p, err := a.strategy.Issue(ctx, subjects(t))
	if err != nil {
		t.Fatal(err)
	}
	verifyOK(t, a.strategy, p.AccessToken)
	verifyOK(t, a.strategy, p.AccessToken)
	if a.cache.Len() != 1 {
		t.Fatal("A does not cache")
	}

	switch mode {
	case "frozen":
		proxy.Freeze()
	case "closed":
		proxy.CloseAll()
	}
	if err := b.strategy.Revoke(ctx, verifyOK(t, b.strategy, p.AccessToken)); err != nil {
		t.Fatal(err)
	}
	refusedWithin(t, a, p.AccessToken, "a token revoked while A's feed was down")

	// Once the feed is back, A caches again.
	proxy.Thaw()
	q, err := a.strategy.Issue(ctx, subjects(t))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		verifyOK(t, a.strategy, q.AccessToken)
		return a.cache.Len() == 1
	}, "A's cache did not resume after the feed came back")
}

// TestPollFeedSeesLateCommits: a revocation row whose id is below one
// already read (a transaction that committed late) is still delivered.
func TestPollFeedSeesLateCommits(t *testing.T) {
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			client := testutil.Database(t, backend)
			feed := token.NewPollFeed(client, 20*time.Millisecond, nil)
			rec := &recorder{}
			defer feed.Subscribe(rec)()
			if err := feed.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = feed.Stop(ctx) })
			add := func(id int64, sid string) {
				err := client.Revocation.Create().SetID(id).SetSessionID(sid).SetUserID(1).
					SetExpiresAt(time.Now().Add(time.Hour)).Exec(ctx)
				if err != nil {
					t.Fatal(err)
				}
			}
			add(5, "late-five")
			testutil.Eventually(t, 2*time.Second, func() bool { return rec.saw("late-five") }, "row 5 not delivered")
			add(3, "late-three") // committed after 5 was read
			testutil.Eventually(t, 2*time.Second, func() bool { return rec.saw("late-three") }, "row 3 not delivered")
		})
	}
}

type recorder struct {
	mu   sync.Mutex
	sids map[string]bool
	live bool
}

func (r *recorder) Evict(rv token.Revoked) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sids == nil {
		r.sids = map[string]bool{}
	}
	for _, s := range rv.SessionIDs {
		r.sids[s] = true
	}
}

func (r *recorder) Reset(live bool) {
	r.mu.Lock()
	r.live = live
	r.mu.Unlock()
}

func (r *recorder) saw(sid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sids[sid]
}
