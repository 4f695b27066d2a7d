package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/user"
)

// recheckWindow is how long a login's new session is remembered: longer
// than any revocation takes to reach every instance through a live feed
// (milliseconds over Redis, a poll interval over the database). A login
// slower than half of it checks its user again itself.
const recheckWindow = 10 * time.Second

// recheck closes the race between a login and a ban, deletion or merge of
// its user committing while the login runs: the login read the user as one
// who may log in, the lifecycle ended every session it found, then the
// login stored its new session, which nothing would end.
//
// Reading the user again after every login would close it at the price of
// a database round trip on the hot path. Instead recheck listens to the
// revocation feed, which tells every instance within a second that
// sessions of a user were ended by a ban, deletion or merge (reasons
// user_banned, user_deleted, revoked):
//
//   - a login that hears of it for its user after it began reads the user
//     again before answering (and ends its session if the user may no
//     longer log in);
//   - a session issued before the news arrives is remembered for
//     recheckWindow, and the news makes recheck read its user again in the
//     background and end it if need be;
//   - while the feed is not live (news may be lost), every login reads its
//     user again, and the sessions remembered then are checked.
//
// A revocation for another cause with the same reason (logout everywhere,
// an operator ending one session) costs a read and ends nothing: the user
// is still active.
type recheck struct {
	users    user.Store
	strategy token.Strategy
	log      *zap.Logger
	now      func() time.Time

	mu     sync.Mutex
	live   bool
	heard  map[int]time.Time // user → when an end of all their sessions was last heard
	issued map[int][]issued  // user → sessions issued within the window
	order  []issued          // the same, oldest first, to forget them

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type issued struct {
	userID int
	sid    string
	at     time.Time
}

// newRecheck subscribes to feed; stop unsubscribes and waits for the
// checks under way. Without a feed every login checks its user again.
func newRecheck(feed token.Feed, users user.Store, strategy token.Strategy, log *zap.Logger) (r *recheck, stop func()) {
	r = &recheck{users: users, strategy: strategy, log: log, now: time.Now,
		heard: map[int]time.Time{}, issued: map[int][]issued{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if feed == nil {
		return r, func() {}
	}
	unsubscribe := feed.Subscribe(r)
	return r, func() { unsubscribe(); r.cancel(); r.wg.Wait() }
}

// begin is taken before a login reads its user.
func (r *recheck) begin() time.Time { return r.now() }

// issuedNow records a login's new session; it reports whether the login
// must check its user again itself before answering.
func (r *recheck) issuedNow(userID int, sid string, began time.Time) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget(now)
	if !r.live || now.Sub(began) > recheckWindow/2 {
		return true
	}
	if at, ok := r.heard[userID]; ok && !at.Before(began) {
		return true
	}
	e := issued{userID: userID, sid: sid, at: now}
	r.issued[userID] = append(r.issued[userID], e)
	r.order = append(r.order, e)
	return false
}

// forget drops what is older than the window; r.mu is held.
func (r *recheck) forget(now time.Time) {
	cut := now.Add(-recheckWindow)
	n := 0
	for n < len(r.order) && r.order[n].at.Before(cut) {
		e := r.order[n]
		list := r.issued[e.userID]
		for i := range list {
			if list[i].sid == e.sid {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(r.issued, e.userID)
		} else {
			r.issued[e.userID] = list
		}
		n++
	}
	r.order = r.order[n:]
	for u, at := range r.heard {
		if at.Before(cut) {
			delete(r.heard, u)
		}
	}
}

// Evict hears a revocation from the feed.
func (r *recheck) Evict(rv token.Revoked) {
	if !lifecycleEnd(rv) {
		return
	}
	now := r.now()
	r.mu.Lock()
	r.forget(now)
	r.heard[rv.UserID] = now
	list := r.issued[rv.UserID]
	delete(r.issued, rv.UserID)
	r.mu.Unlock()
	r.checkLater(list)
}

// lifecycleEnd reports whether a revocation may be a ban, deletion or
// merge ending a user's sessions. The feed between instances that poll the
// database tells sessions one by one, so the reason decides: not a logout,
// nor what a login's session policy ended (that would make every login on
// a device replace its own previous session read its user).
func lifecycleEnd(rv token.Revoked) bool {
	switch rv.Reason {
	case token.ReasonUserBanned, token.ReasonUserDeleted, token.ReasonRevoked:
		return true
	}
	return rv.AllSessions && rv.Reason == ""
}

// Reset hears whether the feed is live; what was issued while news could
// be lost is checked.
func (r *recheck) Reset(live bool) {
	r.mu.Lock()
	r.live = live
	var all []issued
	if !live {
		for _, list := range r.issued {
			all = append(all, list...)
		}
		r.issued, r.order = map[int][]issued{}, nil
	}
	r.mu.Unlock()
	r.checkLater(all)
}

func (r *recheck) checkLater(list []issued) {
	if len(list) == 0 || r.ctx.Err() != nil {
		return
	}
	seen := map[int]bool{}
	for _, e := range list {
		if seen[e.userID] {
			continue
		}
		seen[e.userID] = true
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.checkUntilDone(e.userID)
		}()
	}
}

// checkUntilDone checks a user who logged in just before the news, trying
// again while the stores do not answer (a session is never ended for an
// outage).
func (r *recheck) checkUntilDone(userID int) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		ctx, cancel := context.WithTimeout(r.ctx, token.StoreTimeout)
		err := endIfInactive(ctx, r.users, r.strategy, userID)
		cancel()
		if err == nil || inactive(err) {
			return
		}
		r.log.Warn("cannot check yet whether a user who just logged in was banned or deleted meanwhile; retrying",
			zap.Int("user_id", userID), zap.Error(err))
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// endIfInactive reads the user again and, if they may no longer hold
// sessions, ends every session of theirs (reason user_banned or
// user_deleted: the late ones the lifecycle could not see) and returns why
// (a *user.BannedError or user.ErrNotFound).
func endIfInactive(ctx context.Context, users user.Store, strategy token.Strategy, userID int) error {
	err := users.CheckActive(ctx, userID)
	var banned *user.BannedError
	reason := token.ReasonUserDeleted
	switch {
	case err == nil:
		return nil
	case errors.As(err, &banned):
		reason = token.ReasonUserBanned
	case !errors.Is(err, user.ErrNotFound):
		return err
	}
	if rerr := strategy.RevokeAll(ctx, userID, reason); rerr != nil {
		return rerr
	}
	return err
}

// inactive reports whether err is endIfInactive's verdict that the user may
// no longer hold sessions (rather than a store that did not answer).
func inactive(err error) bool {
	var banned *user.BannedError
	return errors.As(err, &banned) || errors.Is(err, user.ErrNotFound)
}
