package token

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// revocationSet holds, in memory, every session on the deny list whose
// tokens could still be presented, so that the jwt strategy verifies
// without any I/O. It is loaded from the [DenyList] when its feed is (or
// becomes again) live and kept current by the feed; an entry is dropped once
// the last token it covers has expired, which bounds the set by the
// revocations of one access-token lifetime.
//
// While the feed cannot vouch that no revocation was missed (before the
// first load, while it is down, until the reload after it came back),
// vouched is false and Verify asks the deny list as well.
type revocationSet struct {
	deny DenyList
	ttl  time.Duration
	now  func() time.Time
	log  *zap.Logger

	mu        sync.RWMutex
	m         map[string]revEntry
	vouched   bool
	gen       uint64
	nextPrune time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type revEntry struct {
	reason Reason
	until  time.Time
}

var _ Subscriber = (*revocationSet)(nil)

func newRevocationSet(deny DenyList, ttl time.Duration, now func() time.Time, log *zap.Logger) *revocationSet {
	ctx, cancel := context.WithCancel(context.Background())
	return &revocationSet{deny: deny, ttl: ttl, now: now, log: log, m: map[string]revEntry{}, ctx: ctx, cancel: cancel}
}

// lookup reports whether sid is revoked at now, and why; vouched reports
// whether a miss can be trusted.
func (s *revocationSet) lookup(sid string, now time.Time) (reason Reason, revoked, vouched bool) {
	s.mu.RLock()
	e, ok := s.m[sid]
	vouched = s.vouched
	s.mu.RUnlock()
	if ok && now.Before(e.until) {
		return e.reason, true, vouched
	}
	return "", false, vouched
}

// Evict records a revocation the feed carried.
func (s *revocationSet) Evict(r Revoked) {
	until := r.Until
	if until.IsZero() {
		until = s.now().Add(s.ttl + time.Second)
	}
	reason := revokeReason(r.Reason)
	s.mu.Lock()
	for _, sid := range r.SessionIDs {
		s.addLocked(sid, reason, until)
	}
	s.pruneLocked()
	s.mu.Unlock()
}

func (s *revocationSet) addLocked(sid string, reason Reason, until time.Time) {
	if old, ok := s.m[sid]; ok && old.until.After(until) {
		until = old.until
	}
	s.m[strings.Clone(sid)] = revEntry{reason: reason, until: until} // the caller's string may alias a reused buffer
}

// pruneLocked drops expired entries, at most once a minute.
func (s *revocationSet) pruneLocked() {
	now := s.now()
	if now.Before(s.nextPrune) {
		return
	}
	s.nextPrune = now.Add(time.Minute)
	for sid, e := range s.m {
		if !now.Before(e.until) {
			delete(s.m, sid)
		}
	}
}

// Reset is the feed's state: while not live, misses are not trusted; when
// live again, the set reloads from the deny list before it vouches again.
func (s *revocationSet) Reset(live bool) {
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.vouched = false
	s.mu.Unlock()
	if !live {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.reload(gen)
	}()
}

// reload reads the deny list until it succeeds or a newer Reset supersedes
// it. Revocations published while it reads arrive through the feed (live
// since before the read), those stored before it are in what it reads.
func (s *revocationSet) reload(gen uint64) {
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(s.ctx, StoreTimeout)
		live, err := s.deny.Live(ctx, s.now())
		cancel()
		s.mu.Lock()
		if s.gen != gen || s.ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		if err == nil {
			for _, d := range live {
				s.addLocked(d.SessionID, revokeReason(d.Reason), d.Until)
			}
			s.vouched = true
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.log.Warn("token: cannot load the deny list; revocations are checked in the store until it loads", zap.Error(err))
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// close stops a reload in progress.
func (s *revocationSet) close() {
	s.cancel()
	s.wg.Wait()
}

// size is the number of entries held.
func (s *revocationSet) size() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}
