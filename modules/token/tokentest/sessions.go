package tokentest

import (
	"errors"
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/modules/token"
)

// idleFor is the idle timeout of the IdleTimeout case: twice the suite's
// usual access-token lifetime (Env.TTL must not exceed it).
const idleFor = 2 * time.Hour

func sessionsOf(t *testing.T, e Env, userID int) []token.SessionInfo {
	t.Helper()
	list, err := e.Strategy.Sessions(ctx(t), userID)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	return list
}

func ids(list []token.SessionInfo) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}

// sessionsListed: a user's live sessions are listed with what the login
// said, most recently seen first; a refresh moves last_seen_at, a logout
// removes the session, another user's sessions never show.
func sessionsListed(t *testing.T, e Env) {
	u, v := e.NewSubject(t), e.NewSubject(t)
	u.Client, u.Device = token.ClientApp, "Pixel 8 — 设备"
	start := e.Clock.Now()
	a := issue(t, e, u)
	e.Clock.Advance(time.Minute)
	u2 := u
	u2.Client, u2.Device = token.ClientWeb, ""
	b := issue(t, e, u2)
	issue(t, e, v)

	list := sessionsOf(t, e, u.UserID)
	if len(list) != 2 || list[0].ID != b.SessionID || list[1].ID != a.SessionID {
		t.Fatalf("sessions %v, want [%s %s] (most recently seen first)", ids(list), b.SessionID, a.SessionID)
	}
	first := list[1]
	if first.Client != token.ClientApp || first.Device != "Pixel 8 — 设备" || first.AppID != u.AppID {
		t.Fatalf("session %+v does not keep the login's client, device and appid", first)
	}
	within(t, "CreatedAt", first.CreatedAt, start)
	within(t, "LastSeenAt", first.LastSeenAt, start)
	within(t, "ExpiresAt", first.ExpiresAt, a.RefreshExpiresAt)
	if list[0].Client != token.ClientWeb || list[0].Device != "" {
		t.Fatalf("session %+v does not keep the login's client and empty device", list[0])
	}
	if p := mustVerify(t, e, a.AccessToken); p.SessionID != first.ID {
		t.Fatalf("the access token's session %q is not the listed %q", p.SessionID, first.ID)
	}

	// Verifying does not move last_seen_at; a refresh does.
	e.Clock.Advance(10 * time.Minute)
	mustVerify(t, e, a.AccessToken)
	if l := sessionsOf(t, e, u.UserID); !l[1].LastSeenAt.Equal(first.LastSeenAt) {
		t.Fatalf("Verify moved last_seen_at from %s to %s", first.LastSeenAt, l[1].LastSeenAt)
	}
	refreshedAt := e.Clock.Now()
	mustRefresh(t, e, a.RefreshToken)
	list = sessionsOf(t, e, u.UserID)
	if len(list) != 2 || list[0].ID != a.SessionID {
		t.Fatalf("after a refresh, sessions %v, want %s first", ids(list), a.SessionID)
	}
	within(t, "LastSeenAt after refresh", list[0].LastSeenAt, refreshedAt)
	within(t, "CreatedAt after refresh", list[0].CreatedAt, start)

	if err := e.Strategy.Revoke(ctx(t), mustVerify(t, e, b.AccessToken)); err != nil {
		t.Fatal(err)
	}
	if list = sessionsOf(t, e, u.UserID); len(list) != 1 || list[0].ID != a.SessionID {
		t.Fatalf("after logging b out, sessions %v, want [%s]", ids(list), a.SessionID)
	}
	if list := sessionsOf(t, e, e.NewSubject(t).UserID); len(list) != 0 {
		t.Fatalf("a user without logins has sessions %v", ids(list))
	}
}

// revokeSession: a user ends one of their sessions (from another device);
// another user's session, an unknown id or an ended session is not found.
func revokeSession(t *testing.T, e Env) {
	u, v := e.NewSubject(t), e.NewSubject(t)
	a, b, c := issue(t, e, u), issue(t, e, u), issue(t, e, v)
	for _, p := range []token.Pair{a, b, c} {
		mustVerify(t, e, p.AccessToken)
	}
	if err := e.Strategy.RevokeSession(ctx(t), u.UserID, a.SessionID, token.ReasonRevoked); err != nil {
		t.Fatalf("RevokeSession of the user's own session: %v", err)
	}
	refuseFor(t, e, a.AccessToken, token.ReasonRevoked, "an access token of a session the user ended")
	refuseRefreshFor(t, e, a.RefreshToken, token.ReasonRevoked, "a refresh token of a session the user ended")
	mustVerify(t, e, b.AccessToken)

	notFound := func(uid int, sid, what string) {
		t.Helper()
		err := e.Strategy.RevokeSession(ctx(t), uid, sid, token.ReasonRevoked)
		if !errors.Is(err, token.ErrSessionNotFound) {
			t.Fatalf("RevokeSession of %s: got %v, want ErrSessionNotFound", what, err)
		}
	}
	notFound(u.UserID, a.SessionID, "a session already ended")
	notFound(u.UserID, c.SessionID, "another user's session")
	notFound(u.UserID, "unknown-session-id-000", "an unknown id")
	notFound(u.UserID, "", "an empty id")
	notFound(u.UserID, tamper(b.SessionID, 3), "a tampered id")
	mustVerify(t, e, c.AccessToken)
	mustVerify(t, e, b.AccessToken)
	if list := sessionsOf(t, e, u.UserID); len(list) != 1 || list[0].ID != b.SessionID {
		t.Fatalf("sessions %v, want [%s]", ids(list), b.SessionID)
	}
}

// revokeAllWithReason: lifecycle code (bans, deletions) ends every session
// of a user, and clients are told why.
func revokeAllWithReason(t *testing.T, e Env) {
	for _, reason := range []token.Reason{token.ReasonUserBanned, token.ReasonUserDeleted, token.ReasonRevoked} {
		u := e.NewSubject(t)
		a, b := issue(t, e, u), issue(t, e, u)
		mustVerify(t, e, a.AccessToken)
		if err := e.Strategy.RevokeAll(ctx(t), u.UserID, reason); err != nil {
			t.Fatalf("RevokeAll(%s): %v", reason, err)
		}
		refuseFor(t, e, a.AccessToken, reason, "an access token after RevokeAll")
		refuseFor(t, e, b.AccessToken, reason, "an access token after RevokeAll")
		refuseRefreshFor(t, e, b.RefreshToken, reason, "a refresh token after RevokeAll")
		if list := sessionsOf(t, e, u.UserID); len(list) != 0 {
			t.Fatalf("after RevokeAll(%s) the user still has sessions %v", reason, ids(list))
		}
	}
}

// singlePerClient: a login ends the user's other sessions of the same
// client ("replaced"), not those of other clients or other users.
func singlePerClient(t *testing.T, e Env) {
	u, v := e.NewSubject(t), e.NewSubject(t)
	u.Client, v.Client = token.ClientApp, token.ClientApp
	web := u
	web.Client = token.ClientWeb
	first := issue(t, e, u)
	other := issue(t, e, v)
	w := issue(t, e, web)
	mustVerify(t, e, first.AccessToken)
	second := issue(t, e, u)
	refuseFor(t, e, first.AccessToken, token.ReasonReplaced, "the access token of a replaced session")
	refuseRefreshFor(t, e, first.RefreshToken, token.ReasonReplaced, "the refresh token of a replaced session")
	mustVerify(t, e, second.AccessToken)
	mustVerify(t, e, w.AccessToken)
	mustVerify(t, e, other.AccessToken)
	list := sessionsOf(t, e, u.UserID)
	if len(list) != 2 {
		t.Fatalf("sessions %v, want the new app session and the web one", ids(list))
	}
}

// sessionLimit: a login beyond SessionMax ends the user's oldest session.
func sessionLimit(t *testing.T, e Env) {
	u, v := e.NewSubject(t), e.NewSubject(t)
	var pairs []token.Pair
	for range 3 {
		pairs = append(pairs, issue(t, e, u))
		e.Clock.Advance(time.Second)
	}
	issue(t, e, v)
	mustRefresh(t, e, pairs[0].RefreshToken) // seen last, still the oldest login
	fourth := issue(t, e, u)
	refuseFor(t, e, pairs[0].AccessToken, token.ReasonSessionLimit, "the access token of the oldest session beyond the limit")
	refuseRefreshFor(t, e, pairs[0].RefreshToken, token.ReasonSessionLimit, "the oldest session's refresh token beyond the limit")
	for _, p := range append(pairs[1:], fourth) {
		mustVerify(t, e, p.AccessToken)
	}
	if list := sessionsOf(t, e, u.UserID); len(list) != 3 {
		t.Fatalf("sessions %v, want 3", ids(list))
	}
	if list := sessionsOf(t, e, v.UserID); len(list) != 1 {
		t.Fatalf("another user's sessions %v, want 1", ids(list))
	}
}

// idleTimeout: a session whose refresh token goes unused for the idle
// timeout expires; refreshing keeps it alive, but never past the refresh
// TTL counted from the login.
func idleTimeout(t *testing.T, e Env) {
	if e.TTL > idleFor {
		t.Fatalf("the case needs TTL <= %s", idleFor)
	}
	u := e.NewSubject(t)
	idle := issue(t, e, u)
	within(t, "RefreshExpiresAt with an idle timeout", idle.RefreshExpiresAt, e.Clock.Now().Add(idleFor))
	busy := issue(t, e, u)
	login := e.Clock.Now()

	e.Clock.Advance(idleFor - time.Minute)
	busy = mustRefresh(t, e, busy.RefreshToken)
	within(t, "RefreshExpiresAt after a refresh", busy.RefreshExpiresAt, e.Clock.Now().Add(idleFor))
	e.Clock.Advance(2 * time.Minute)
	refuseRefreshFor(t, e, idle.RefreshToken, token.ReasonExpired, "a refresh token unused for the idle timeout")
	if list := sessionsOf(t, e, u.UserID); len(list) != 1 || list[0].ID != busy.SessionID {
		t.Fatalf("sessions %v, want only the refreshed one", ids(list))
	}

	// Refreshing within the idle timeout keeps the session until the
	// absolute bound.
	for e.Clock.Now().Add(idleFor / 2).Before(login.Add(e.RefreshTTL)) {
		e.Clock.Advance(idleFor / 2)
		busy = mustRefresh(t, e, busy.RefreshToken)
		if busy.RefreshExpiresAt.After(login.Add(e.RefreshTTL).Add(time.Second)) {
			t.Fatalf("the session runs until %s, past the absolute bound %s", busy.RefreshExpiresAt, login.Add(e.RefreshTTL))
		}
	}
	e.Clock.Advance(login.Add(e.RefreshTTL).Sub(e.Clock.Now()) + time.Second)
	refuseRefreshFor(t, e, busy.RefreshToken, token.ReasonExpired, "a refresh token past the refresh TTL from the login")
}

// storeDown: a store that does not answer is ErrUnavailable, never a
// verdict on the token.
func storeDown(t *testing.T, e Env) {
	u := e.NewSubject(t)
	known := issue(t, e, u)
	mustVerify(t, e, known.AccessToken)
	fresh := issue(t, e, u)
	e.Break(t)

	unavailable := func(err error, what string) {
		t.Helper()
		if !errors.Is(err, token.ErrUnavailable) {
			t.Fatalf("%s with the store down: got %v, want ErrUnavailable", what, err)
		}
		if errors.Is(err, token.ErrUnauthenticated) || errors.Is(err, token.ErrInvalidRefresh) {
			t.Fatalf("%s with the store down is a verdict on the token: %v", what, err)
		}
	}
	for _, tok := range []string{known.AccessToken, fresh.AccessToken} {
		// A strategy may verify without I/O (a cache, the jwt deny list in
		// memory); if it asks the store, the answer is ErrUnavailable.
		if _, err := e.Strategy.Verify(ctx(t), tok); err != nil {
			unavailable(err, "Verify")
		}
	}
	_, err := e.Strategy.Issue(ctx(t), u)
	unavailable(err, "Issue")
	_, err = e.Strategy.Refresh(ctx(t), fresh.RefreshToken)
	unavailable(err, "Refresh")
	_, err = e.Strategy.Sessions(ctx(t), u.UserID)
	unavailable(err, "Sessions")
	unavailable(e.Strategy.RevokeAll(ctx(t), u.UserID, token.ReasonLoggedOut), "RevokeAll")
	unavailable(e.Strategy.RevokeSession(ctx(t), u.UserID, fresh.SessionID, token.ReasonRevoked), "RevokeSession")
}
