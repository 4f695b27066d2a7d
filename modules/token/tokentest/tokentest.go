// Package tokentest is the contract every token.Strategy must keep, as a
// test suite: run it against any implementation with [Run].
package tokentest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/config"
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
	// Break makes the strategy's stores stop answering (a stopped service,
	// or a proxy in front of it cut); set when Settings.Breakable asked for it.
	Break func(t *testing.T)
}

// Settings are what a case needs the strategy to be built with, on top of
// the lifetimes of Env.
type Settings struct {
	// SessionMax, SinglePerClient, RefreshIdle and RefreshGrace go to the
	// config.Token fields of the same names (SessionSinglePerClient).
	SessionMax      int
	SinglePerClient bool
	RefreshIdle     time.Duration
	RefreshGrace    time.Duration
	// Breakable asks for an Env whose Break works.
	Breakable bool
}

// Apply copies the settings into a token configuration.
func (s Settings) Apply(cfg *config.Token) {
	cfg.SessionMax = s.SessionMax
	cfg.SessionSinglePerClient = s.SinglePerClient
	cfg.RefreshIdle = s.RefreshIdle
	cfg.RefreshGrace = s.RefreshGrace
}

// DefaultGrace is the refresh grace of the cases that do not set their own.
const DefaultGrace = 30 * time.Second

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
		return token.Subject{UserID: u.ID, Provider: providerOf(n.Load()), AppID: "wxtestapp", OpenID: openid,
			Client: token.ClientMiniProgram, Device: "iPhone 15 / 微信 8.0"}
	}
}

// Subjects returns a NewSubject for stores that keep no users (redis).
func Subjects() func(t testing.TB) token.Subject {
	var n atomic.Int64
	base := int(time.Now().UnixNano() % 1_000_000_000)
	return func(testing.TB) token.Subject {
		i := n.Add(1)
		return token.Subject{UserID: base + int(i), Provider: providerOf(i), AppID: "wxtestapp", OpenID: fmt.Sprintf("o-test-%d", i),
			Client: token.ClientMiniProgram, Device: "iPhone 15 / 微信 8.0"}
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
// environment per case, built with the settings the case asks for.
func Run(t *testing.T, newEnv func(t *testing.T, s Settings) Env) {
	grace := Settings{RefreshGrace: DefaultGrace}
	cases := []struct {
		name     string
		settings Settings
		run      func(t *testing.T, e Env)
	}{
		{"IssueThenVerify", grace, issueThenVerify},
		{"RejectsBadAccessTokens", grace, rejectsBadAccessTokens},
		{"Expiry", grace, expiry},
		{"RefreshRotates", grace, refreshRotates},
		{"RejectsBadRefreshTokens", grace, rejectsBadRefreshTokens},
		{"ReuseRevokesFamily", grace, reuseRevokesFamily},
		{"LogoutEndsOneSession", grace, logoutEndsOneSession},
		{"LogoutEverywhere", grace, logoutEverywhere},
		{"ConcurrentRefreshAllSucceed", grace, concurrentRefresh},
		{"ConcurrentRefreshWithoutGrace", Settings{}, concurrentRefreshWithoutGrace},
		{"GraceWindow", grace, graceWindow},
		{"SessionsListed", grace, sessionsListed},
		{"RevokeSession", grace, revokeSession},
		{"RevokeAllWithReason", grace, revokeAllWithReason},
		{"SinglePerClient", Settings{SinglePerClient: true, SessionMax: 10, RefreshGrace: DefaultGrace}, singlePerClient},
		{"SessionLimit", Settings{SessionMax: 3, RefreshGrace: DefaultGrace}, sessionLimit},
		{"IdleTimeout", Settings{RefreshIdle: idleFor, RefreshGrace: DefaultGrace}, idleTimeout},
		{"StoreDownIsUnavailable", Settings{RefreshGrace: DefaultGrace, Breakable: true}, storeDown},
		{"PairHidesTokens", grace, pairHidesTokens},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.settings)
			if e.RefreshTTL <= e.TTL+time.Second {
				t.Fatalf("the suite needs RefreshTTL > TTL + 1s")
			}
			if c.settings.Breakable && e.Break == nil {
				t.Fatalf("the case needs Env.Break")
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
	if !slices.Contains(token.Reasons, token.ReasonOf(err)) {
		t.Fatalf("Verify of %s: reason %q is not one of token.Reasons", what, token.ReasonOf(err))
	}
}

// refuseFor checks that Verify refuses access for reason.
func refuseFor(t *testing.T, e Env, access string, reason token.Reason, what string) {
	t.Helper()
	_, err := e.Strategy.Verify(ctx(t), access)
	if !errors.Is(err, token.ErrUnauthenticated) {
		t.Fatalf("Verify of %s: got %v, want ErrUnauthenticated", what, err)
	}
	if got := token.ReasonOf(err); got != reason {
		t.Fatalf("Verify of %s: reason %q, want %q (%v)", what, got, reason, err)
	}
}

// refuseRefreshFor checks that Refresh refuses refresh with
// ErrInvalidRefresh for reason.
func refuseRefreshFor(t *testing.T, e Env, refresh string, reason token.Reason, what string) {
	t.Helper()
	_, err := e.Strategy.Refresh(ctx(t), refresh)
	if !errors.Is(err, token.ErrInvalidRefresh) {
		t.Fatalf("Refresh of %s: got %v, want ErrInvalidRefresh", what, err)
	}
	if got := token.ReasonOf(err); got != reason {
		t.Fatalf("Refresh of %s: reason %q, want %q (%v)", what, got, reason, err)
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
		refuseFor(t, e, c.tok, token.ReasonInvalid, c.name)
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
	refuseFor(t, e, pair.AccessToken, token.ReasonExpired, "an expired access token")

	// The refresh token outlives the access token.
	next := mustRefresh(t, e, pair.RefreshToken)
	mustVerify(t, e, next.AccessToken)
	mustRefuse(t, e, pair.AccessToken, "the expired access token after a refresh")

	e.Clock.Advance(e.RefreshTTL + time.Second)
	refuseFor(t, e, next.AccessToken, token.ReasonExpired, "an access token after its refresh token expired")
	refuseRefreshFor(t, e, next.RefreshToken, token.ReasonExpired, "an expired refresh token")
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

	e.Clock.Advance(DefaultGrace + time.Second) // within the grace window it is not a reuse (see GraceWindow)
	refuseRefresh(t, e, p0.RefreshToken, token.ErrRefreshReused, "a spent refresh token")
	refuseFor(t, e, p1.AccessToken, token.ReasonRevoked, "the newest access token of a family revoked for reuse")
	refuseFor(t, e, p0.AccessToken, token.ReasonRevoked, "an older access token of a family revoked for reuse")
	refuseRefreshFor(t, e, p1.RefreshToken, token.ReasonRevoked, "the newest refresh token of a revoked family")
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
	refuseFor(t, e, a1.AccessToken, token.ReasonLoggedOut, "the access token that logged out")
	refuseFor(t, e, a0.AccessToken, token.ReasonLoggedOut, "an older access token of the logged-out session")
	refuseRefreshFor(t, e, a1.RefreshToken, token.ReasonLoggedOut, "the refresh token of a logged-out session")

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
	if err := e.Strategy.RevokeAll(ctx(t), u.UserID, token.ReasonLoggedOut); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	for _, p := range []token.Pair{a, b, b1} {
		refuseFor(t, e, p.AccessToken, token.ReasonLoggedOut, "an access token after logout everywhere")
	}
	refuseRefreshFor(t, e, a.RefreshToken, token.ReasonLoggedOut, "a refresh token after logout everywhere")
	refuseRefreshFor(t, e, b1.RefreshToken, token.ReasonLoggedOut, "a refresh token after logout everywhere")
	mustVerify(t, e, c.AccessToken)

	// Logging in again works.
	mustVerify(t, e, issue(t, e, u).AccessToken)
	if err := e.Strategy.RevokeAll(ctx(t), e.NewSubject(t).UserID, token.ReasonLoggedOut); err != nil {
		t.Fatalf("RevokeAll of a user without sessions: %v", err)
	}
}

// refreshAtOnce presents one refresh token n times at once.
func refreshAtOnce(t *testing.T, e Env, refresh string, n int) ([]token.Pair, []error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	pairs := make([]token.Pair, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			pairs[i], errs[i] = e.Strategy.Refresh(ctx(t), refresh)
		}()
	}
	close(start)
	wg.Wait()
	return pairs, errs
}

// concurrentRefresh: a client that sees two 401s at once refreshes twice
// with one refresh token. Every refresh succeeds, every answer works, the
// refresh tokens handed out are one and the same, and the session lives on.
func concurrentRefresh(t *testing.T, e Env) {
	s := e.NewSubject(t)
	p0 := issue(t, e, s)
	const n = 8
	pairs, errs := refreshAtOnce(t, e, p0.RefreshToken, n)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("refresh %d of %d concurrent refreshes with one token failed: %v", i+1, n, err)
		}
	}
	current := pairs[0].RefreshToken
	for _, p := range pairs {
		if p.RefreshToken != current {
			t.Fatal("concurrent refreshes handed out different refresh tokens")
		}
		if p.SessionID != p0.SessionID {
			t.Fatalf("a concurrent refresh changed the session")
		}
		mustVerify(t, e, p.AccessToken)
	}
	if current == p0.RefreshToken {
		t.Fatal("the refresh token did not rotate")
	}
	next := mustRefresh(t, e, current)
	mustVerify(t, e, next.AccessToken)
	mustVerify(t, e, pairs[n-1].AccessToken)
	if list, err := e.Strategy.Sessions(ctx(t), s.UserID); err != nil || len(list) != 1 {
		t.Fatalf("after concurrent refreshes the user has sessions %v (%v), want the one", list, err)
	}
}

// concurrentRefreshWithoutGrace: with the grace window off, one refresh
// wins and the others are taken as reuse, which revokes the family.
func concurrentRefreshWithoutGrace(t *testing.T, e Env) {
	s := e.NewSubject(t)
	p0 := issue(t, e, s)
	const n = 8
	pairs, errs := refreshAtOnce(t, e, p0.RefreshToken, n)
	wins, reused := 0, 0
	var winner token.Pair
	for i, err := range errs {
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
	refuseFor(t, e, winner.AccessToken, token.ReasonRevoked, "the winner's access token after reuse detection")
	refuseRefresh(t, e, winner.RefreshToken, token.ErrInvalidRefresh, "the winner's refresh token after reuse detection")
}

// graceWindow: the refresh token a refresh just replaced is accepted again
// for the grace window, answers the current refresh token and revokes
// nothing; after the window it is a reuse.
func graceWindow(t *testing.T, e Env) {
	s := e.NewSubject(t)
	p0 := issue(t, e, s)
	p1 := mustRefresh(t, e, p0.RefreshToken)
	e.Clock.Advance(DefaultGrace - time.Second)
	late := mustRefresh(t, e, p0.RefreshToken)
	if late.RefreshToken != p1.RefreshToken {
		t.Fatal("a refresh within the grace window did not answer the current refresh token")
	}
	if late.AccessToken == p1.AccessToken {
		t.Fatal("a refresh within the grace window did not issue a new access token")
	}
	mustVerify(t, e, late.AccessToken)
	mustVerify(t, e, p1.AccessToken)

	// The current token still rotates; the one before it is now the one in grace.
	e.Clock.Advance(2 * time.Second)
	p2 := mustRefresh(t, e, p1.RefreshToken)
	mustVerify(t, e, p2.AccessToken)

	// Past the grace window, the token replaced first is a reuse.
	e.Clock.Advance(DefaultGrace + time.Second)
	refuseRefresh(t, e, p1.RefreshToken, token.ErrRefreshReused, "a replaced refresh token after the grace window")
	refuseFor(t, e, p2.AccessToken, token.ReasonRevoked, "the session's newest access token after the reuse")
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
