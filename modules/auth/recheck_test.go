package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// statusStore answers CheckActive from a map (unit test: only the status
// read matters here); users it does not know are active.
type statusStore struct {
	user.Store
	mu     sync.Mutex
	status map[int]error
	reads  int
}

func (s *statusStore) CheckActive(_ context.Context, id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return s.status[id]
}

func (s *statusStore) set(id int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[id] = err
}

func (s *statusStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// endings records RevokeAll calls.
type endings struct {
	token.Strategy
	mu    sync.Mutex
	ended map[int]token.Reason
}

func (e *endings) RevokeAll(_ context.Context, userID int, reason token.Reason) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ended[userID] = reason
	return nil
}

func (e *endings) reason(userID int) (token.Reason, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.ended[userID]
	return r, ok
}

func newTestRecheck(t *testing.T) (*recheck, *token.LocalFeed, *statusStore, *endings) {
	feed := token.NewLocalFeed()
	users := &statusStore{status: map[int]error{}}
	strategy := &endings{ended: map[int]token.Reason{}}
	r, stop := newRecheck(feed, users, strategy, zap.NewNop())
	t.Cleanup(stop)
	return r, feed, users, strategy
}

func TestRecheckCostsNothingWhileNothingHappens(t *testing.T) {
	r, _, users, _ := newTestRecheck(t)
	for i := range 1000 {
		began := r.begin()
		require.False(t, r.issuedNow(i, "s", began))
	}
	require.Zero(t, users.readCount(), "no read of the user on the way of an ordinary login")
}

func TestRecheckEndsASessionIssuedBeforeTheNews(t *testing.T) {
	r, feed, users, strategy := newTestRecheck(t)
	began := r.begin()
	// The login read user 7 as active; the ban commits and ends the
	// sessions it finds; the login stores its session, then the news comes.
	users.set(7, &user.BannedError{})
	require.False(t, r.issuedNow(7, "late", began))
	require.False(t, r.issuedNow(8, "other", began))
	require.NoError(t, feed.Publish(context.Background(), token.Revoked{UserID: 7, AllSessions: true, Reason: token.ReasonUserBanned}))
	require.Eventually(t, func() bool { _, ok := strategy.reason(7); return ok }, 5*time.Second, 5*time.Millisecond)
	reason, _ := strategy.reason(7)
	require.Equal(t, token.ReasonUserBanned, reason)
	_, ok := strategy.reason(8)
	require.False(t, ok, "another user's sessions are left alone")
}

func TestRecheckMakesALoginThatHeardTheNewsReadItsUser(t *testing.T) {
	r, feed, _, _ := newTestRecheck(t)
	began := r.begin()
	require.NoError(t, feed.Publish(context.Background(), token.Revoked{UserID: 7, AllSessions: true, Reason: token.ReasonUserDeleted}))
	require.True(t, r.issuedNow(7, "s1", began), "the news came after the login began")
	require.False(t, r.issuedNow(8, "s2", began), "news of another user")
	require.False(t, r.issuedNow(7, "s3", r.begin()), "a login that began after the news read the user after it")
	for _, reason := range []token.Reason{token.ReasonLoggedOut, token.ReasonReplaced, token.ReasonSessionLimit} {
		require.NoError(t, feed.Publish(context.Background(), token.Revoked{UserID: 9, SessionIDs: []string{"x"}, Reason: reason}))
		require.False(t, r.issuedNow(9, "s4", began), "%s is no news of a ban", reason)
	}
	// Between instances polling the database a ban arrives session by session.
	require.NoError(t, feed.Publish(context.Background(), token.Revoked{UserID: 10, SessionIDs: []string{"x"}, Reason: token.ReasonUserBanned}))
	require.True(t, r.issuedNow(10, "s5", began))
}

func TestRecheckLogoutEverywhereEndsNothing(t *testing.T) {
	r, feed, users, strategy := newTestRecheck(t)
	require.False(t, r.issuedNow(7, "new", r.begin()))
	require.NoError(t, feed.Publish(context.Background(), token.Revoked{UserID: 7, AllSessions: true, Reason: token.ReasonRevoked}))
	require.Eventually(t, func() bool { return users.readCount() == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	_, ok := strategy.reason(7)
	require.False(t, ok, "the user is active: the session stands")
}

func TestRecheckWhileTheFeedIsDown(t *testing.T) {
	r, _, users, strategy := newTestRecheck(t)
	require.False(t, r.issuedNow(7, "before", r.begin()))
	users.set(7, user.ErrNotFound)
	r.Reset(false) // what the feed does when it loses its connection
	require.Eventually(t, func() bool { _, ok := strategy.reason(7); return ok }, 5*time.Second, 5*time.Millisecond)
	reason, _ := strategy.reason(7)
	require.Equal(t, token.ReasonUserDeleted, reason, "news may have been lost: what was remembered is checked")
	require.True(t, r.issuedNow(8, "during", r.begin()), "every login reads its user while news may be lost")
	r.Reset(true)
	require.False(t, r.issuedNow(8, "after", r.begin()))
}

func TestRecheckNeverEndsASessionForAnOutage(t *testing.T) {
	r, feed, users, strategy := newTestRecheck(t)
	require.False(t, r.issuedNow(7, "s", r.begin()))
	users.set(7, errors.New("user: read status: connection refused"))
	require.NoError(t, feed.Publish(context.Background(), token.Revoked{UserID: 7, AllSessions: true, Reason: token.ReasonUserBanned}))
	require.Eventually(t, func() bool { return users.readCount() >= 2 }, 5*time.Second, 5*time.Millisecond, "tried again")
	_, ok := strategy.reason(7)
	require.False(t, ok)
	users.set(7, &user.BannedError{})
	require.Eventually(t, func() bool { _, ok := strategy.reason(7); return ok }, 5*time.Second, 5*time.Millisecond, "ended once the store answers")
}

func TestRecheckForgetsAfterTheWindow(t *testing.T) {
	r, feed, users, strategy := newTestRecheck(t)
	var mu sync.Mutex
	clock := time.Now()
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }

	began := r.begin()
	require.False(t, r.issuedNow(7, "old", began))
	advance(recheckWindow + time.Second)
	require.False(t, r.issuedNow(8, "new", r.begin()))
	r.mu.Lock()
	require.Len(t, r.order, 1, "what is older than the window is forgotten")
	r.mu.Unlock()
	users.set(7, &user.BannedError{})
	require.NoError(t, feed.Publish(context.Background(), token.Revoked{UserID: 7, AllSessions: true, Reason: token.ReasonUserBanned}))
	time.Sleep(50 * time.Millisecond)
	_, ok := strategy.reason(7)
	require.False(t, ok)

	slow := r.begin()
	advance(recheckWindow/2 + time.Second)
	require.True(t, r.issuedNow(9, "slow", slow), "a slow login reads its user itself")
}
