package platformtoken

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// RefreshMargin is how long before expiry a token stops being used and the
// next one is fetched (half the lifetime for tokens living under twice that).
const RefreshMargin = 5 * time.Minute

// DefaultLockTTL is how long one instance may hold an app's fetch lock
// unless WithLockTTL says otherwise: twice a usual call timeout.
const DefaultLockTTL = 10 * time.Second

// pollInterval is how often an instance waiting for another one's fetch
// reads the store.
const pollInterval = 20 * time.Millisecond

// FetchFunc gets a new access token from the platform and its lifetime.
type FetchFunc func(ctx context.Context) (value string, expiresIn time.Duration, err error)

// Option adjusts New.
type Option func(*Manager)

// WithLogger sets the logger (default: none). The manager logs under the
// name "access_token" with the appid.
func WithLogger(l *zap.Logger) Option {
	return func(m *Manager) {
		if l != nil {
			m.log = l
		}
	}
}

// WithClock sets the clock that decides when a token is due for refresh (tests).
func WithClock(now func() time.Time) Option {
	return func(m *Manager) {
		if now != nil {
			m.now = now
		}
	}
}

// WithLockTTL sets how long one instance may hold the fleet's fetch lock
// (default [DefaultLockTTL]); make it at least twice the fetch's timeout.
func WithLockTTL(d time.Duration) Option {
	return func(m *Manager) {
		if d > 0 {
			m.lockTTL = d
		}
	}
}

// WithRejected sets the test of [Manager.Do]: when it reports that a call
// failed because the platform rejected the token (WeChat: 40001, 42001, …),
// Do invalidates the token, reads it again and retries the call once.
// Without it, Do never retries.
func WithRejected(rejected func(error) bool) Option {
	return func(m *Manager) { m.rejected = rejected }
}

// WithUnavailable turns the manager's own failures — the caller's context
// ended while waiting for a fetch — into the platform's "unavailable" error,
// so callers classify them like any other failure of that platform.
// Without it they are returned wrapped in a plain error.
func WithUnavailable(wrap func(cause error) error) Option {
	return func(m *Manager) {
		if wrap != nil {
			m.unavailable = wrap
		}
	}
}

// Observer hears every fetch of a new token from the platform (metrics;
// modules/metrics provides one). It must be quick.
type Observer interface {
	// TokenFetched is one fetch for appid that took d; err is nil when a
	// token came back.
	TokenFetched(appid string, d time.Duration, err error)
}

// WithObserver makes o hear every fetch (default: nobody).
func WithObserver(o Observer) Option {
	return func(m *Manager) { m.observer = o }
}

// Manager hands out one appid's access token: from its own memory while
// fresh, else from the shared Store, else fetched — once per process
// (single-flight) and once per fleet (the store's lock; the others poll the
// store for the result).
type Manager struct {
	appID       string
	store       Store
	fetch       FetchFunc
	now         func() time.Time
	log         *zap.Logger
	lockTTL     time.Duration
	rejected    func(error) bool
	unavailable func(error) error
	observer    Observer

	cached atomic.Pointer[Token]
	flight singleflight.Group
}

// New manages appID's token in store (nil: a new MemoryStore), fetching
// with fetch.
func New(appID string, store Store, fetch FetchFunc, opts ...Option) *Manager {
	if store == nil {
		store = NewMemoryStore()
	}
	m := &Manager{
		appID:       appID,
		store:       store,
		fetch:       fetch,
		now:         time.Now,
		log:         zap.NewNop(),
		lockTTL:     DefaultLockTTL,
		unavailable: func(err error) error { return fmt.Errorf("access token: %w", err) },
	}
	for _, o := range opts {
		o(m)
	}
	m.log = m.log.Named("access_token").With(zap.String("appid", appID))
	return m
}

// AppID is the app whose token this manager keeps.
func (m *Manager) AppID() string { return m.appID }

// Store is where the manager shares tokens.
func (m *Manager) Store() Store { return m.store }

// AccessToken returns a token that is not yet due for refresh. Concurrent
// callers share one store read or fetch; a caller whose ctx ends stops
// waiting without cancelling it for the others.
func (m *Manager) AccessToken(ctx context.Context) (string, error) {
	if t := m.cached.Load(); t != nil && t.FreshAt(m.now()) {
		return t.Value, nil
	}
	ch := m.flight.DoChan("token", func() (any, error) {
		// Bounded on its own: the lock holder's fetch, then our own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*m.lockTTL)
		defer cancel()
		return m.load(ctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(Token).Value, nil
	case <-ctx.Done():
		return "", m.unavailable(ctx.Err())
	}
}

// load reads the shared token, or fetches one under the fleet lock, or waits
// for the instance holding the lock to store one.
func (m *Manager) load(ctx context.Context) (Token, error) {
	waited := false
	for {
		t, ok, err := m.store.Get(ctx, m.appID)
		if err != nil {
			return m.fetchWithoutStore(ctx, err)
		}
		if ok && t.FreshAt(m.now()) {
			m.cached.Store(&t)
			if waited {
				m.log.Debug("access token stored by another instance")
			}
			return t, nil
		}
		lease, locked, err := m.store.Lock(ctx, m.appID, m.lockTTL)
		if err != nil {
			return m.fetchWithoutStore(ctx, err)
		}
		if locked {
			return m.fetchLocked(ctx, lease)
		}
		waited = true
		timer := time.NewTimer(pollInterval)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return Token{}, m.unavailable(fmt.Errorf("waiting for another instance's fetch: %w", ctx.Err()))
		}
	}
}

// fetchLocked fetches while holding the fleet lock, unless the token
// appeared between the first read and the lock.
func (m *Manager) fetchLocked(ctx context.Context, lease string) (Token, error) {
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.lockTTL)
		defer cancel()
		if err := m.store.Unlock(uctx, m.appID, lease); err != nil {
			m.log.Warn("cannot release the access token lock; it expires on its own", zap.Error(err))
		}
	}()
	if t, ok, err := m.store.Get(ctx, m.appID); err == nil && ok && t.FreshAt(m.now()) {
		m.cached.Store(&t)
		return t, nil
	}
	t, err := m.fetchNew(ctx)
	if err != nil {
		return Token{}, err
	}
	if err := m.store.Set(ctx, m.appID, t); err != nil {
		m.log.Warn("cannot share the access token; other instances will fetch their own", zap.Error(err))
	}
	m.cached.Store(&t)
	return t, nil
}

// fetchWithoutStore keeps logins working while the store is down.
func (m *Manager) fetchWithoutStore(ctx context.Context, storeErr error) (Token, error) {
	m.log.Warn("access token store failed; fetching without it", zap.Error(storeErr))
	t, err := m.fetchNew(ctx)
	if err != nil {
		return Token{}, err
	}
	m.cached.Store(&t)
	return t, nil
}

func (m *Manager) fetchNew(ctx context.Context) (Token, error) {
	start := time.Now()
	value, lifetime, err := m.fetch(ctx)
	if m.observer != nil {
		m.observer.TokenFetched(m.appID, time.Since(start), err)
	}
	if err != nil {
		return Token{}, err
	}
	now := m.now()
	margin := RefreshMargin
	if lifetime < 2*margin {
		margin = lifetime / 2
	}
	t := Token{Value: value, RefreshAt: now.Add(lifetime - margin), ExpiresAt: now.Add(lifetime)}
	m.log.Info("access token fetched", zap.Duration("expires_in", lifetime), zap.Time("refresh_at", t.RefreshAt))
	return t, nil
}

// Invalidate forgets stale, a token the platform just rejected, here and in
// the store — only where it is still the current token, so a token another
// instance has meanwhile stored survives.
func (m *Manager) Invalidate(ctx context.Context, stale string) error {
	if t := m.cached.Load(); t != nil && t.Value == stale {
		m.cached.CompareAndSwap(t, nil)
	}
	return m.store.Invalidate(ctx, m.appID, stale)
}

// Do runs call with the current token. If the platform rejects the token
// (the WithRejected test), Do invalidates it, reads the token again
// (another instance may have refreshed it, else it is fetched) and runs
// call once more.
func (m *Manager) Do(ctx context.Context, call func(ctx context.Context, token string) error) error {
	token, err := m.AccessToken(ctx)
	if err != nil {
		return err
	}
	err = call(ctx, token)
	if err == nil || m.rejected == nil || !m.rejected(err) {
		return err
	}
	m.log.Info("access token rejected; reading it again and retrying once", zap.Error(err))
	if ierr := m.Invalidate(ctx, token); ierr != nil {
		m.log.Warn("cannot invalidate the rejected access token", zap.Error(ierr))
	}
	token, err = m.AccessToken(ctx)
	if err != nil {
		return err
	}
	return call(ctx, token)
}
