package token_test

import (
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/token/tokentest"
)

// TestContract runs the one contract suite against every strategy, on every
// backend, with and without the verification cache.
func TestContract(t *testing.T) {
	for _, k := range kinds {
		for _, backend := range backendsFor(k) {
			for _, cached := range []bool{false, true} {
				name := k.name + "/" + backend + "/plain"
				if cached {
					name = k.name + "/" + backend + "/cached"
				}
				t.Run(name, func(t *testing.T) {
					tokentest.Run(t, func(t *testing.T, settings tokentest.Settings) tokentest.Env {
						clock := tokentest.NewClock(time.Now())
						var s stores
						if settings.Breakable {
							s = openBreakable(t, k, backend)
						} else {
							s = openStores(t, k, backend)
						}
						feed := token.NewLocalFeed()
						cfg := testConfig(t, k.strategy, k.alg)
						settings.Apply(&cfg)
						st := build(t, k, s, cfg, token.Options{Feed: feed, Now: clock.Now})
						if cached {
							c, err := token.NewCached(st, feed, token.CacheOptions{Size: 100, Now: clock.Now})
							if err != nil {
								t.Fatal(err)
							}
							t.Cleanup(c.Close)
							st = c
						}
						e := tokentest.Env{Strategy: st, Clock: clock, TTL: testTTL, RefreshTTL: testRefreshTTL, NewSubject: subjectsFor(s)}
						if settings.Breakable {
							e.Break = func(*testing.T) { s.breakAll() }
						}
						return e
					})
				})
			}
		}
	}
}
