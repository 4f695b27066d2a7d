package token_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/token/tokentest"
)

// fakeInner verifies any token named "tok-<user>-<session>" until exp, and
// counts the calls that reach it.
type fakeInner struct {
	calls   atomic.Int64
	exp     time.Time
	refuse  sync.Map // tokens refused from now on
	onCheck func(tok string)
}

func (f *fakeInner) Name() string { return "fake" }
func (f *fakeInner) Issue(context.Context, token.Subject) (token.Pair, error) {
	return token.Pair{}, nil
}
func (f *fakeInner) Refresh(context.Context, string) (token.Pair, error) { return token.Pair{}, nil }
func (f *fakeInner) Revoke(context.Context, token.Principal) error       { return nil }
func (f *fakeInner) RevokeAll(context.Context, int, token.Reason) error  { return nil }
func (f *fakeInner) RevokeSession(context.Context, int, string, token.Reason) error {
	return nil
}
func (f *fakeInner) Sessions(context.Context, int) ([]token.SessionInfo, error) { return nil, nil }
func (f *fakeInner) Verify(_ context.Context, tok string) (token.Principal, error) {
	f.calls.Add(1)
	if f.onCheck != nil {
		f.onCheck(tok)
	}
	if _, refused := f.refuse.Load(tok); refused {
		return token.Principal{}, token.ErrUnauthenticated
	}
	var uid int
	var sid string
	if _, err := fmt.Sscanf(tok, "tok-%d-%s", &uid, &sid); err != nil {
		return token.Principal{}, token.ErrUnauthenticated
	}
	return token.Principal{UserID: uid, SessionID: sid, TokenID: tok, ExpiresAt: f.exp}, nil
}

func newTestCache(t *testing.T, size int) (*token.Cached, *fakeInner, *tokentest.Clock, *token.LocalFeed) {
	t.Helper()
	clock := tokentest.NewClock(time.Now())
	inner := &fakeInner{exp: clock.Now().Add(time.Minute)}
	feed := token.NewLocalFeed()
	c, err := token.NewCached(inner, feed, token.CacheOptions{Size: size, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, inner, clock, feed
}

func verifyOK(t *testing.T, s token.Strategy, tok string) token.Principal {
	t.Helper()
	p, err := s.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify(%s): %v", tok, err)
	}
	return p
}

func TestCacheHitDoesNotReachTheStrategy(t *testing.T) {
	c, inner, _, _ := newTestCache(t, 100)
	first := verifyOK(t, c, "tok-1-a")
	for range 10 {
		if p := verifyOK(t, c, "tok-1-a"); p != first {
			t.Fatalf("cached principal %+v differs from %+v", p, first)
		}
	}
	if n := inner.calls.Load(); n != 1 {
		t.Fatalf("the strategy was asked %d times, want 1", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	for _, size := range []int{1, 7, 100, 1000} {
		c, _, _, _ := newTestCache(t, size)
		for i := range 3 * size {
			verifyOK(t, c, fmt.Sprintf("tok-%d-s%d", i%5, i))
			if c.Len() > size {
				t.Fatalf("size %d: %d entries held", size, c.Len())
			}
		}
		if c.Len() < size/2 {
			t.Fatalf("size %d: only %d entries held after %d tokens", size, c.Len(), 3*size)
		}
	}
}

func TestCacheEntryNeverOutlivesToken(t *testing.T) {
	c, inner, clock, _ := newTestCache(t, 100)
	verifyOK(t, c, "tok-1-a")
	inner.refuse.Store("tok-1-a", true) // what the strategy says once the token expired
	clock.Advance(time.Minute)
	if _, err := c.Verify(context.Background(), "tok-1-a"); !errors.Is(err, token.ErrUnauthenticated) {
		t.Fatalf("an expired cached token: got %v", err)
	}
	if c.Len() != 0 {
		t.Fatalf("the expired entry is still held")
	}
}

func TestCacheEvicts(t *testing.T) {
	c, inner, _, feed := newTestCache(t, 100)
	toks := []string{"tok-1-a", "tok-1-a2", "tok-1-b", "tok-2-c"}
	for _, tok := range toks {
		verifyOK(t, c, tok)
	}
	// reaches reports whether verifying tok asks the strategy.
	reaches := func(tok string) bool {
		before := inner.calls.Load()
		verifyOK(t, c, tok)
		return inner.calls.Load() != before
	}
	_ = feed.Publish(context.Background(), token.Revoked{UserID: 1, SessionIDs: []string{"a"}})
	if !reaches("tok-1-a") {
		t.Fatal("an entry of a revoked session was served")
	}
	for _, tok := range []string{"tok-1-a2", "tok-1-b", "tok-2-c"} {
		if reaches(tok) {
			t.Fatalf("%s was dropped with another session", tok)
		}
	}
	// Entries verified again after a revocation are cached again.
	if reaches("tok-1-a") {
		t.Fatal("an entry verified after the revocation is not cached")
	}
	_ = feed.Publish(context.Background(), token.Revoked{UserID: 1, AllSessions: true})
	for _, tok := range []string{"tok-1-a", "tok-1-a2", "tok-1-b"} {
		if !reaches(tok) {
			t.Fatalf("%s was served after its user was revoked everywhere", tok)
		}
	}
	if reaches("tok-2-c") {
		t.Fatal("another user's entry was evicted")
	}
}

// Revocation marks are bounded: once every entry they could concern has
// expired, they are forgotten.
func TestCacheForgetsOldRevocations(t *testing.T) {
	c, inner, clock, feed := newTestCache(t, 100)
	verifyOK(t, c, "tok-1-a")
	for i := range 1000 {
		_ = feed.Publish(context.Background(), token.Revoked{UserID: i, SessionIDs: []string{fmt.Sprint("s", i)}})
	}
	clock.Advance(2 * time.Minute) // past the entries' expiry and the prune interval
	inner.exp = clock.Now().Add(time.Minute)
	_ = feed.Publish(context.Background(), token.Revoked{UserID: 5, SessionIDs: []string{"x"}})
	if n := token.CacheMarks(c); n > 1 {
		t.Fatalf("%d revocation marks kept after every cached token expired", n)
	}
}

func TestCacheOffWhileFeedNotLive(t *testing.T) {
	c, inner, _, _ := newTestCache(t, 100)
	verifyOK(t, c, "tok-1-a")
	c.Reset(false)
	before := inner.calls.Load()
	verifyOK(t, c, "tok-1-a")
	verifyOK(t, c, "tok-1-a")
	if inner.calls.Load() != before+2 || c.Len() != 0 {
		t.Fatal("the cache served or kept entries while its feed was down")
	}
	c.Reset(true)
	verifyOK(t, c, "tok-1-a")
	verifyOK(t, c, "tok-1-a")
	if inner.calls.Load() != before+3 {
		t.Fatal("the cache did not resume once its feed was back")
	}
}

// A revocation that lands while the strategy is verifying must not let the
// verification's (stale) result into the cache.
func TestCacheEvictionDuringVerification(t *testing.T) {
	c, inner, _, feed := newTestCache(t, 100)
	inner.onCheck = func(tok string) {
		_ = feed.Publish(context.Background(), token.Revoked{UserID: 1, SessionIDs: []string{"a"}})
	}
	verifyOK(t, c, "tok-1-a")
	if c.Len() != 0 {
		t.Fatal("a result verified before a revocation was cached after it")
	}
}

// The caller's string may alias a buffer that is reused (fasthttp does
// that); the cache keeps its own copy.
func TestCacheCopiesTheKey(t *testing.T) {
	c, inner, _, _ := newTestCache(t, 100)
	buf := []byte("tok-1-a")
	verifyOK(t, c, unsafe.String(&buf[0], len(buf)))
	copy(buf, "tok-2-b")
	before := inner.calls.Load()
	if p := verifyOK(t, c, "tok-1-a"); p.UserID != 1 || inner.calls.Load() != before {
		t.Fatalf("the cached key changed with the caller's buffer (principal %+v)", p)
	}
	if p := verifyOK(t, c, "tok-2-b"); p.UserID != 2 {
		t.Fatalf("tok-2-b verified as %+v", p)
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	c, _, _, feed := newTestCache(t, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				tok := fmt.Sprintf("tok-%d-s%d", i%7, (i*g)%97)
				p, err := c.Verify(context.Background(), tok)
				if err != nil || p.TokenID != tok {
					t.Errorf("Verify(%s) = %+v, %v", tok, p, err)
					return
				}
				switch i % 500 {
				case 0:
					_ = feed.Publish(context.Background(), token.Revoked{UserID: i % 7, AllSessions: true})
				case 250:
					c.Reset(true)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 64 {
		t.Fatalf("%d entries held, bound 64", c.Len())
	}
}

// A revocation's session id may alias a buffer the caller reuses (a Fiber
// path parameter); the cache keeps its own copy.
func TestCacheCopiesRevokedSessionIDs(t *testing.T) {
	c, inner, _, feed := newTestCache(t, 100)
	verifyOK(t, c, "tok-1-a")
	buf := []byte("a")
	_ = feed.Publish(context.Background(), token.Revoked{UserID: 1, SessionIDs: []string{unsafe.String(&buf[0], len(buf))}})
	buf[0] = 'z'
	before := inner.calls.Load()
	verifyOK(t, c, "tok-1-a")
	if inner.calls.Load() == before {
		t.Fatal("the revoked session's entry was served after the caller reused its buffer")
	}
}
