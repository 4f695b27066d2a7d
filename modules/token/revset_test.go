package token_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/token/tokentest"
)

// switchFeed is a feed whose liveness the test sets, as a Redis
// subscription or a database poll going down and coming back would.
type switchFeed struct {
	mu   sync.Mutex
	subs map[*token.Subscriber]struct{}
	live bool
}

func (f *switchFeed) Publish(_ context.Context, r token.Revoked) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		(*s).Evict(r)
	}
	return nil
}

func (f *switchFeed) Subscribe(s token.Subscriber) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[*token.Subscriber]struct{}{}
	}
	key := &s
	f.subs[key] = struct{}{}
	s.Reset(f.live)
	return func() {
		f.mu.Lock()
		delete(f.subs, key)
		f.mu.Unlock()
	}
}

func (f *switchFeed) setLive(live bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live = live
	for s := range f.subs {
		(*s).Reset(live)
	}
}

// countingDeny counts the lookups that reach the deny list.
type countingDeny struct {
	token.DenyList
	denied atomic.Int64
}

func (d *countingDeny) Denied(ctx context.Context, sid string, now time.Time) (token.Reason, bool, error) {
	d.denied.Add(1)
	return d.DenyList.Denied(ctx, sid, now)
}

// TestJWTRevocationsInMemory: with its feed live, the jwt strategy
// verifies without asking the deny list; a revocation made elsewhere while
// the feed was down is still refused (the deny list is asked meanwhile),
// and once the feed is back the set reloads and vouches again. A store
// that is down never logs anyone out while the set vouches, and is a 503
// (ErrUnavailable), not a 401, while it does not.
func TestJWTRevocationsInMemory(t *testing.T) {
	ctx := context.Background()
	client := testutil.SQLite(t)
	cfg := testConfig(t, token.NameJWT, token.AlgHS256)
	keys, err := token.NewKeySet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deny := &countingDeny{DenyList: token.NewDBDenyList(client)}
	feed := &switchFeed{live: true}
	a, err := token.NewJWT(client, keys, deny, token.Options{Config: cfg, Feed: feed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	// b is another instance: its revocations do not reach a's feed.
	b, err := token.NewJWT(client, keys, token.NewDBDenyList(client), token.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	subjects := tokentest.EntSubjects(client)
	u := subjects(t)
	p1, _ := a.Issue(ctx, u)
	p2, _ := a.Issue(ctx, u)
	testutil.Eventually(t, 5*time.Second, func() bool { return token.JWTVouched(a) }, "the deny list was not loaded")

	before := deny.denied.Load()
	for range 100 {
		verifyOK(t, a, p1.AccessToken)
	}
	if n := deny.denied.Load() - before; n != 0 {
		t.Fatalf("%d deny-list lookups while the in-memory set vouches, want 0", n)
	}
	// A revocation on this instance is immediate, from memory.
	if err := a.Revoke(ctx, verifyOK(t, a, p2.AccessToken)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, p2.AccessToken); token.ReasonOf(err) != token.ReasonLoggedOut {
		t.Fatalf("a logged-out token: %v", err)
	}

	// The feed goes down; b revokes meanwhile.
	feed.setLive(false)
	if err := b.RevokeAll(ctx, u.UserID, token.ReasonUserBanned); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, p1.AccessToken); token.ReasonOf(err) != token.ReasonUserBanned {
		t.Fatalf("a token revoked elsewhere while the feed was down: %v", err)
	}
	if deny.denied.Load() == before {
		t.Fatal("the deny list was not asked while the feed was down")
	}

	// Back: the set reloads, knows b's revocation, and vouches again.
	feed.setLive(true)
	testutil.Eventually(t, 5*time.Second, func() bool { return token.JWTVouched(a) }, "the deny list was not reloaded")
	before = deny.denied.Load()
	if _, err := a.Verify(ctx, p1.AccessToken); token.ReasonOf(err) != token.ReasonUserBanned {
		t.Fatalf("after the reload: %v", err)
	}
	v := subjects(t)
	p3, _ := a.Issue(ctx, v)
	verifyOK(t, a, p3.AccessToken)
	if deny.denied.Load() != before {
		t.Fatal("the deny list was asked after the reload")
	}

	// The database goes away: verification goes on from memory …
	client.Close()
	verifyOK(t, a, p3.AccessToken)
	// … until the feed cannot vouch any more: then it is unavailable, not a 401.
	feed.setLive(false)
	_, err = a.Verify(ctx, p3.AccessToken)
	if !errors.Is(err, token.ErrUnavailable) || errors.Is(err, token.ErrUnauthenticated) {
		t.Fatalf("verify with the feed and the database down: %v, want ErrUnavailable", err)
	}
}
