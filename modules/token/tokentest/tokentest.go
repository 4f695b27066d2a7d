// Package tokentest is the contract every token.Strategy must keep, as a
// test suite: run it against any implementation with [Run].
package tokentest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/modules/token"
)

// Clock is a clock that tests move by hand; give its Now to the strategy.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Env is one strategy under test with what the suite needs around it.
type Env struct {
	// Strategy is the implementation under test.
	Strategy token.Strategy
	// Clock is the clock the strategy (and its cache) reads.
	Clock *Clock
	// TTL and RefreshTTL are the strategy's lifetimes; the suite needs
	// RefreshTTL > TTL + 1s.
	TTL, RefreshTTL time.Duration
	// NewSubject returns a subject the strategy can issue for (a user that
	// exists in its store).
	NewSubject func(t testing.TB) token.Subject
}

// EntSubjects returns a NewSubject that creates users with client.
func EntSubjects(client *ent.Client) func(t testing.TB) token.Subject {
	var n atomic.Int64
	return func(t testing.TB) token.Subject {
		t.Helper()
		openid := fmt.Sprintf("o-test-%d-%d", time.Now().UnixNano(), n.Add(1))
		u, err := client.User.Create().Save(context.Background())
		if err != nil {
			t.Fatalf("create user: %v", err)
		}
		return token.Subject{UserID: u.ID, Provider: providerOf(n.Load()), AppID: "wxtestapp", OpenID: openid}
	}
}

// Subjects returns a NewSubject for stores that keep no users (redis).
func Subjects() func(t testing.TB) token.Subject {
	var n atomic.Int64
	base := int(time.Now().UnixNano() % 1_000_000_000)
	return func(testing.TB) token.Subject {
		i := n.Add(1)
		return token.Subject{UserID: base + int(i), Provider: providerOf(i), AppID: "wxtestapp", OpenID: fmt.Sprintf("o-test-%d", i)}
	}
}

// providerOf gives every other subject a platform other than WeChat, and
// leaves some unset (which means WeChat), so the contract sees all three.
func providerOf(i int64) string {
	switch i % 3 {
	case 0:
		return "qq"
	case 1:
		return "wechat"
	}
	return ""
}

// sameIdentity reports whether a principal names the subject's identity.
func sameIdentity(p token.Principal, s token.Subject) bool {
	want := s.Provider
	if want == "" {
		want = token.DefaultProvider
	}
	return p.UserID == s.UserID && p.Provider == want && p.AppID == s.AppID && p.OpenID == s.OpenID
}

// Run runs the contract against the strategies newEnv returns, one fresh
// environment per case.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	cases := []struct {
		name string
		run  func(t *testing.T, e Env)
	}{
		{"IssueThenVerify", issueThenVerify},
		{"RejectsBadAccessTokens", rejectsBadAccessTokens},
		{"Expiry", expiry},
		{"RefreshRotates", refreshRotates},
		{"RejectsBadRefreshTokens", rejectsBadRefreshTokens},
		{"ReuseRevokesFamily", reuseRevokesFamily},
		{"LogoutEndsOneSession", logoutEndsOneSession},
		{"LogoutEverywhere", logoutEverywhere},
		{"ConcurrentRefreshOneWinner", concurrentRefresh},
		{"PairHidesTokens", pairHidesTokens},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			if e.RefreshTTL <= e.TTL+time.Second {
				t.Fatalf("the suite needs RefreshTTL > TTL + 1s")
			}
			c.run(t, e)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func issue(t *testing.T, e Env, s token.Subject) token.Pair {
	t.Helper()
	p, err := e.Strategy.Issue(ctx(t), s)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return p
}

func mustVerify(t *testing.T, e Env, access string) token.Principal {
	t.Helper()
	p, err := e.Strategy.Verify(ctx(t), access)
	if err != nil {
		t.Fatalf("Verify of a valid token: %v", err)
	}
	return p
}

func mustRefuse(t *testing.T, e Env, access, what string) {
	t.Helper()
	_, err := e.Strategy.Verify(ctx(t), access)
	if !errors.Is(err, token.ErrUnauthenticated) {
		t.Fatalf("Verify of %s: got %v, want ErrUnauthenticated", what, err)
	}
	if access != "" && strings.Contains(err.Error(), access) {
		t.Fatalf("the error quotes the token: %q", err)
	}
}

func mustRefresh(t *testing.T, e Env, refresh string) token.Pair {
	t.Helper()
	p, err := e.Strategy.Refresh(ctx(t), refresh)
	if err != nil {
		t.Fatalf("Refresh of a valid refresh token: %v", err)
	}
	return p
}

func refuseRefresh(t *testing.T, e Env, refresh string, want error, what string) {
	t.Helper()
	_, err := e.Strategy.Refresh(ctx(t), refresh)
	if !errors.Is(err, want) {
		t.Fatalf("Refresh of %s: got %v, want %v", what, err, want)
	}
	if refresh != "" && strings.Contains(err.Error(), refresh) {
		t.Fatalf("the error quotes the refresh token: %q", err)
	}
}

func issueThenVerify(t *testing.T, e Env) {
	s := e.NewSubject(t)
	before := e.Clock.Now()
	pair := issue(t, e, s)
	if pair.AccessToken == "" || pair.RefreshToken == "" || pair.SessionID == "" {
		t.Fatalf("Issue returned an incomplete pair: %v", pair)
	}
	if pair.AccessToken == pair.RefreshToken {
		t.Fatal("access and refresh tokens are the same")
	}
	within(t, "ExpiresAt", pair.ExpiresAt, before.Add(e.TTL))
	within(t, "RefreshExpiresAt", pair.RefreshExpiresAt, before.Add(e.RefreshTTL))

	for range 2 { // the second call may come from a cache
		p := mustVerify(t, e, pair.AccessToken)
		if !sameIdentity(p, s) {
			t.Fatalf("principal %+v does not match subject %+v", p, s)
		}
		if p.SessionID != pair.SessionID {
			t.Fatalf("principal session %q, pair session %q", p.SessionID, pair.SessionID)
		}
		if p.TokenID == "" {
			t.Fatal("principal has no TokenID")
		}
		if !p.ExpiresAt.Equal(pair.ExpiresAt) {
			t.Fatalf("principal expires %s, pair says %s", p.ExpiresAt, pair.ExpiresAt)
		}
	}

	other := issue(t, e, s)
	if other.AccessToken == pair.AccessToken || other.RefreshToken == pair.RefreshToken || other.SessionID == pair.SessionID {
		t.Fatal("a second login reused the first one's tokens or session")
	}
	if p := mustVerify(t, e, other.AccessToken); p.SessionID != other.SessionID {
		t.Fatalf("second login verifies as session %q, want %q", p.SessionID, other.SessionID)
	}
}

// within checks got is want give or take the second tokens are rounded to.
func within(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("%s is %s, want about %s", what, got, want)
	}
}

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// tamper changes the character at i to one that differs in its high bits,
// which always changes the decoded bytes.
func tamper(s string, i int) string {
	for ; i < len(s); i++ {
		if k := strings.IndexByte(b64, s[i]); k >= 0 {
			return s[:i] + string(b64[(k+32)%64]) + s[i+1:]
		}
	}
	return s + "A"
}

func rejectsBadAccessTokens(t *testing.T, e Env) {
	s := e.NewSubject(t)
	pair := issue(t, e, s)
	mustVerify(t, e, pair.AccessToken) // a cache, if any, now holds it
	a := pair.AccessToken
	cases := []struct{ name, tok string }{
		{"empty", ""},
		{"garbage", "not-a-token"},
		{"spaces", "   "},
		{"bearer prefix", "Bearer " + a},
		{"first char changed", tamper(a, 0)},
		{"middle char changed", tamper(a, len(a)/2)},
		{"last char changed", tamper(a, len(a)-2)},
		{"truncated", a[:len(a)-1]},
		{"extended", a + "A"},
		{"refresh token", pair.RefreshToken},
		{"JWT-shaped garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."},
		{"NUL", "\x00"},
		{"long", strings.Repeat("A", 10000)},
	}
	for _, c := range cases {
		mustRefuse(t, e, c.tok, c.name)
	}
	mustVerify(t, e, a)
}

func expiry(t *testing.T, e Env) {
	s := e.NewSubject(t)
	pair := issue(t, e, s)
	mustVerify(t, e, pair.AccessToken)
	e.Clock.Advance(e.TTL - 2*time.Second)
	mustVerify(t, e, pair.AccessToken)
	e.Clock.Advance(3 * time.Second)
	mustRefuse(t, e, pair.AccessToken, "an expired access token")

	// The refresh token outlives the access token.
	next := mustRefresh(t, e, pair.RefreshToken)
	mustVerify(t, e, next.AccessToken)
	mustRefuse(t, e, pair.AccessToken, "the expired access token after a refresh")

	e.Clock.Advance(e.RefreshTTL + time.Second)
	mustRefuse(t, e, next.AccessToken, "an access token after its refresh token expired")
	refuseRefresh(t, e, next.RefreshToken, token.ErrInvalidRefresh, "an expired refresh token")
}

func refreshRotates(t *testing.T, e Env) {
	s := e.NewSubject(t)
	p0 := issue(t, e, s)
	mustVerify(t, e, p0.AccessToken)
	e.Clock.Advance(time.Second)
	p1 := mustRefresh(t, e, p0.RefreshToken)
	if p1.AccessToken == p0.AccessToken || p1.RefreshToken == p0.RefreshToken {
		t.Fatal("refresh did not issue new tokens")
	}
	if p1.SessionID != p0.SessionID {
		t.Fatalf("refresh changed the session: %q -> %q", p0.SessionID, p1.SessionID)
	}
	pr := mustVerify(t, e, p1.AccessToken)
	if !sameIdentity(pr, s) || pr.SessionID != p0.SessionID {
		t.Fatalf("refreshed principal %+v does not match subject %+v", pr, s)
	}
	if !pr.ExpiresAt.Equal(p1.ExpiresAt) {
		t.Fatalf("principal expires %s, pair says %s", pr.ExpiresAt, p1.ExpiresAt)
	}
	within(t, "refreshed RefreshExpiresAt", p1.RefreshExpiresAt, e.Clock.Now().Add(e.RefreshTTL))
	// An access token issued before the refresh lives on until it expires.
	mustVerify(t, e, p0.AccessToken)
	// The new refresh token rotates in turn.
	p2 := mustRefresh(t, e, p1.RefreshToken)
	mustVerify(t, e, p2.AccessToken)
}

func rejectsBadRefreshTokens(t *testing.T, e Env) {
	s := e.NewSubject(t)
	pair := issue(t, e, s)
	other := issue(t, e, s)
	sid, _, _ := strings.Cut(pair.RefreshToken, ".")
	_, otherSecret, _ := strings.Cut(other.RefreshToken, ".")
	cases := []struct{ name, tok string }{
		{"empty", ""},
		{"garbage", "garbage"},
		{"dots", "a.b"},
		{"access token", pair.AccessToken},
		{"unknown session", tamper(pair.RefreshToken, 0)},
		{"truncated", pair.RefreshToken[:len(pair.RefreshToken)-1]},
		{"session id only", sid},
		// Someone who knows a live session's id (JWTs carry it) but not its
		// secret must not be able to end it by faking a "reuse".
		{"forged secret for a live session", sid + "." + strings.Repeat("A", 43)},
		{"tampered secret", tamper(pair.RefreshToken, len(pair.RefreshToken)-5)},
		{"another session's secret", sid + "." + otherSecret},
	}
	for _, c := range cases {
		refuseRefresh(t, e, c.tok, token.ErrInvalidRefresh, c.name)
	}
	// None of that hurt the real sessions.
	mustVerify(t, e, pair.AccessToken)
	mustVerify(t, e, mustRefresh(t, e, other.RefreshToken).AccessToken)
	mustVerify(t, e, mustRefresh(t, e, pair.RefreshToken).AccessToken)
}

func reuseRevokesFamily(t *testing.T, e Env) {
	s := e.NewSubject(t)
	p0 := issue(t, e, s)
	bystander := issue(t, e, s) // another login of the same user
	p1 := mustRefresh(t, e, p0.RefreshToken)
	mustVerify(t, e, p0.AccessToken)
	mustVerify(t, e, p1.AccessToken)
	mustVerify(t, e, bystander.AccessToken)

	refuseRefresh(t, e, p0.RefreshToken, token.ErrRefreshReused, "a spent refresh token")
	mustRefuse(t, e, p1.AccessToken, "the newest access token of a family revoked for reuse")
	mustRefuse(t, e, p0.AccessToken, "an older access token of a family revoked for reuse")
	refuseRefresh(t, e, p1.RefreshToken, token.ErrInvalidRefresh, "the newest refresh token of a revoked family")
	refuseRefresh(t, e, p0.RefreshToken, token.ErrInvalidRefresh, "the spent refresh token of a revoked family")

	mustVerify(t, e, bystander.AccessToken)
	mustVerify(t, e, mustRefresh(t, e, bystander.RefreshToken).AccessToken)
}

func logoutEndsOneSession(t *testing.T, e Env) {
	u, v := e.NewSubject(t), e.NewSubject(t)
	a0 := issue(t, e, u)
	a1 := mustRefresh(t, e, a0.RefreshToken)
	b := issue(t, e, u)
	c := issue(t, e, v)
	for _, p := range []token.Pair{a0, a1, b, c} {
		mustVerify(t, e, p.AccessToken)
	}
	principal := mustVerify(t, e, a1.AccessToken)
	if err := e.Strategy.Revoke(ctx(t), principal); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	mustRefuse(t, e, a1.AccessToken, "the access token that logged out")
	mustRefuse(t, e, a0.AccessToken, "an older access token of the logged-out session")
	refuseRefresh(t, e, a1.RefreshToken, token.ErrInvalidRefresh, "the refresh token of a logged-out session")

	mustVerify(t, e, b.AccessToken)
	mustVerify(t, e, c.AccessToken)
	mustVerify(t, e, mustRefresh(t, e, b.RefreshToken).AccessToken)

	if err := e.Strategy.Revoke(ctx(t), principal); err != nil {
		t.Fatalf("a second Revoke of the same session: %v", err)
	}
	// A principal cannot end a session of another user.
	forged := principal
	forged.SessionID = c.SessionID
	_ = e.Strategy.Revoke(ctx(t), forged)
	mustVerify(t, e, c.AccessToken)
}

func logoutEverywhere(t *testing.T, e Env) {
	u, v := e.NewSubject(t), e.NewSubject(t)
	a := issue(t, e, u)
	b := issue(t, e, u)
	b1 := mustRefresh(t, e, b.RefreshToken)
	c := issue(t, e, v)
	for _, p := range []token.Pair{a, b, b1, c} {
		mustVerify(t, e, p.AccessToken)
	}
	if err := e.Strategy.RevokeAll(ctx(t), u.UserID); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	for _, p := range []token.Pair{a, b, b1} {
		mustRefuse(t, e, p.AccessToken, "an access token after logout everywhere")
	}
	refuseRefresh(t, e, a.RefreshToken, token.ErrInvalidRefresh, "a refresh token after logout everywhere")
	refuseRefresh(t, e, b1.RefreshToken, token.ErrInvalidRefresh, "a refresh token after logout everywhere")
	mustVerify(t, e, c.AccessToken)

	// Logging in again works.
	mustVerify(t, e, issue(t, e, u).AccessToken)
	if err := e.Strategy.RevokeAll(ctx(t), e.NewSubject(t).UserID); err != nil {
		t.Fatalf("RevokeAll of a user without sessions: %v", err)
	}
}

func concurrentRefresh(t *testing.T, e Env) {
	s := e.NewSubject(t)
	p0 := issue(t, e, s)
	const n = 8
	var wg sync.WaitGroup
	results := make([]error, n)
	pairs := make([]token.Pair, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pairs[i], results[i] = e.Strategy.Refresh(ctx(t), p0.RefreshToken)
		}()
	}
	close(start)
	wg.Wait()
	wins, reused := 0, 0
	var winner token.Pair
	for i, err := range results {
		switch {
		case err == nil:
			wins++
			winner = pairs[i]
		case errors.Is(err, token.ErrRefreshReused):
			reused++
		case errors.Is(err, token.ErrInvalidRefresh):
		default:
			t.Fatalf("concurrent refresh failed unexpectedly: %v", err)
		}
	}
	if wins != 1 || reused < 1 {
		t.Fatalf("%d concurrent refreshes with one token: %d succeeded, %d detected reuse; want exactly 1 success and at least 1 reuse", n, wins, reused)
	}
	// The reuse revoked the family, the winner's tokens included.
	mustRefuse(t, e, winner.AccessToken, "the winner's access token after reuse detection")
	refuseRefresh(t, e, winner.RefreshToken, token.ErrInvalidRefresh, "the winner's refresh token after reuse detection")
}

func pairHidesTokens(t *testing.T, e Env) {
	pair := issue(t, e, e.NewSubject(t))
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out := fmt.Sprintf(format, pair)
		if strings.Contains(out, pair.AccessToken) || strings.Contains(out, pair.RefreshToken) {
			t.Fatalf("fmt %s prints a token: %s", format, out)
		}
	}
	if out := fmt.Sprintf("%v %+v", e.Strategy, e.Strategy); strings.Contains(out, pair.AccessToken) {
		t.Fatalf("printing the strategy shows a token: %s", out)
	}
}
