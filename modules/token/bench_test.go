package token_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/wxlogin/wxlogin/modules/token"
)

// BenchmarkVerify measures Verify of valid tokens for every strategy and
// backend, cold (every call reaches the store or checks the signature) and
// behind the cache, from parallel goroutines:
//
//	go test -run '^$' -bench Verify ./modules/token/
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, k := range kinds {
		for _, backend := range backendsFor(k) {
			for _, cached := range []bool{false, true} {
				mode := "cold"
				if cached {
					mode = "cached"
				}
				b.Run(k.name+"/"+backend+"/"+mode, func(b *testing.B) {
					s := openStores(b, k, backend)
					feed := token.NewLocalFeed()
					cfg := testConfig(b, k.strategy, k.alg)
					var st token.Strategy = build(b, k, s, cfg, token.Options{Feed: feed})
					if cached {
						c, err := token.NewCached(st, feed, token.CacheOptions{Size: cfg.CacheSize})
						if err != nil {
							b.Fatal(err)
						}
						defer c.Close()
						st = c
					}
					// 16 users with 16 sessions each: a realistic spread over
					// the cache's shards.
					subjects := subjectsFor(s)
					var tokens []string
					for range 16 {
						subj := subjects(b)
						for range 16 {
							p, err := st.Issue(ctx, subj)
							if err != nil {
								b.Fatal(err)
							}
							tokens = append(tokens, p.AccessToken)
						}
					}
					for _, tok := range tokens {
						if _, err := st.Verify(ctx, tok); err != nil {
							b.Fatal(err)
						}
					}
					var next atomic.Int64
					b.ReportAllocs()
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						i := int(next.Add(97))
						for pb.Next() {
							if _, err := st.Verify(ctx, tokens[i%len(tokens)]); err != nil {
								b.Error(err)
								return
							}
							i++
						}
					})
				})
			}
		}
	}
}
