package wechat

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

// pollInterval is how often an instance waiting for another one's fetch
// reads the store.
const pollInterval = 20 * time.Millisecond

// FetchFunc gets a new access token from WeChat and its lifetime.
type FetchFunc func(ctx context.Context) (value string, expiresIn time.Duration, err error)

// TokenManager hands out one AppID's access token: from its own memory while
// fresh, else from the shared TokenStore, else fetched — once per process
// (single-flight) and once per fleet (the store's lock; the others poll the
// store for the result).
type TokenManager struct {
	appID   string
	store   TokenStore
	fetch   FetchFunc
	now     func() time.Time
	log     *zap.Logger
	lockTTL time.Duration

	cached atomic.Pointer[Token]
	flight singleflight.Group
}

// NewTokenManager manages appID's token in store (nil: a new MemoryStore),
// fetching with fetch. WithLogger, WithClock and WithTokenLockTTL apply.
func NewTokenManager(appID string, store TokenStore, fetch FetchFunc, opts ...Option) *TokenManager {
	o := collect(append(opts, WithTokenStore(store)))
	if o.lockTTL <= 0 {
		o.lockTTL = 2 * DefaultTimeout
	}
	return newTokenManager(appID, fetch, o)
}

func newTokenManager(appID string, fetch FetchFunc, o options) *TokenManager {
	return &TokenManager{
		appID:   appID,
		store:   o.store,
		fetch:   fetch,
		now:     o.now,
		log:     o.logger.Named("wechat.token").With(zap.String("appid", appID)),
		lockTTL: o.lockTTL,
	}
}

// AppID is the app whose token this manager keeps.
func (m *TokenManager) AppID() string { return m.appID }

// Store is where the manager shares tokens.
func (m *TokenManager) Store() TokenStore { return m.store }

// AccessToken returns a token that is not yet due for refresh. Concurrent
// callers share one store read or fetch; a caller whose ctx ends stops
// waiting without cancelling it for the others.
func (m *TokenManager) AccessToken(ctx context.Context) (string, error) {
	if t := m.cached.Load(); t != nil && t.freshAt(m.now()) {
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
		return "", &TransportError{Path: "access token", Err: ctx.Err()}
	}
}

// load reads the shared token, or fetches one under the fleet lock, or waits
// for the instance holding the lock to store one.
func (m *TokenManager) load(ctx context.Context) (Token, error) {
	waited := false
	for {
		t, ok, err := m.store.Get(ctx, m.appID)
		if err != nil {
			return m.fetchWithoutStore(ctx, err)
		}
		if ok && t.freshAt(m.now()) {
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
			return Token{}, &TransportError{Path: "access token", Err: fmt.Errorf("waiting for another instance's fetch: %w", ctx.Err())}
		}
	}
}

// fetchLocked fetches while holding the fleet lock, unless the token
// appeared between the first read and the lock.
func (m *TokenManager) fetchLocked(ctx context.Context, lease string) (Token, error) {
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.lockTTL)
		defer cancel()
		if err := m.store.Unlock(uctx, m.appID, lease); err != nil {
			m.log.Warn("cannot release the access token lock; it expires on its own", zap.Error(err))
		}
	}()
	if t, ok, err := m.store.Get(ctx, m.appID); err == nil && ok && t.freshAt(m.now()) {
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
func (m *TokenManager) fetchWithoutStore(ctx context.Context, storeErr error) (Token, error) {
	m.log.Warn("access token store failed; fetching without it", zap.Error(storeErr))
	t, err := m.fetchNew(ctx)
	if err != nil {
		return Token{}, err
	}
	m.cached.Store(&t)
	return t, nil
}

func (m *TokenManager) fetchNew(ctx context.Context) (Token, error) {
	value, lifetime, err := m.fetch(ctx)
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

// Invalidate forgets stale, the token WeChat just rejected, here and in the
// store — only where it is still the current token, so a token another
// instance has meanwhile stored survives.
func (m *TokenManager) Invalidate(ctx context.Context, stale string) error {
	if t := m.cached.Load(); t != nil && t.Value == stale {
		m.cached.CompareAndSwap(t, nil)
	}
	return m.store.Invalidate(ctx, m.appID, stale)
}

// Do runs call with the current token. If WeChat rejects the token
// (KindAccessToken), Do invalidates it, reads the token again (another
// instance may have refreshed it, else it is fetched) and runs call once more.
func (m *TokenManager) Do(ctx context.Context, call func(ctx context.Context, token string) error) error {
	token, err := m.AccessToken(ctx)
	if err != nil {
		return err
	}
	err = call(ctx, token)
	if !IsKind(err, KindAccessToken) {
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
