package token

import (
	"context"
	"errors"
	"time"
)

// Observer hears what the token checks and the revocation feed do, for
// metrics (modules/metrics provides one through fx). Its methods run on the
// request path and in the feed's loop: they must be quick and never block.
type Observer interface {
	// Verified is one access-token check: the strategy's name, how the
	// cache answered, and the result: "ok", the [Reason] of a refused
	// token, "unavailable" (the store did not answer) or "error".
	Verified(strategy string, cache CacheOutcome, result string)
	// RevocationReceived is a revocation that reached this instance
	// through the feed ("redis", "poll"), lag after it was made (as the
	// two instances' clocks tell).
	RevocationReceived(feed string, lag time.Duration)
	// FeedLive is the feed's state: while it is false the verification
	// cache is off (every check goes to the store).
	FeedLive(feed string, live bool)
}

// CacheOutcome is how the verification cache answered one check.
type CacheOutcome string

// Cache outcomes.
const (
	// CacheHit: answered from memory.
	CacheHit CacheOutcome = "hit"
	// CacheMiss: not in memory; the strategy checked it.
	CacheMiss CacheOutcome = "miss"
	// CacheBypass: the feed cannot vouch for revocations, so the cache
	// is off for now and the strategy checked it.
	CacheBypass CacheOutcome = "bypass"
	// CacheOff: no cache is configured (APP_TOKEN_CACHE_SIZE=0).
	CacheOff CacheOutcome = "off"
)

// NopObserver hears nothing.
type NopObserver struct{}

var _ Observer = NopObserver{}

// Verified does nothing.
func (NopObserver) Verified(string, CacheOutcome, string) {}

// RevocationReceived does nothing.
func (NopObserver) RevocationReceived(string, time.Duration) {}

// FeedLive does nothing.
func (NopObserver) FeedLive(string, bool) {}

// VerifyResult is the result an [Observer] is told for Verify's error.
func VerifyResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrUnauthenticated):
		return string(ReasonOf(err))
	}
	return "error"
}

// observed tells an Observer about every Verify of a strategy that has no
// cache in front of it.
type observed struct {
	Strategy
	obs Observer
}

func (o observed) Verify(ctx context.Context, accessToken string) (Principal, error) {
	p, err := o.Strategy.Verify(ctx, accessToken)
	o.obs.Verified(o.Strategy.Name(), CacheOff, VerifyResult(err))
	return p, err
}

// Inner is the observed strategy.
func (o observed) Inner() Strategy { return o.Strategy }
