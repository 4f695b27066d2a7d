package token_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/modules/token"
)

// principalInner verifies any token as a principal shaped like a real one
// (a 28-character openid, a 22-character session id and token id, one of
// a few appids), each string its own allocation as a decoder makes it.
type principalInner struct {
	token.Strategy
	exp time.Time
}

func (principalInner) Name() string { return "jwt" }

func (p principalInner) Verify(_ context.Context, tok string) (token.Principal, error) {
	n := len(tok)
	return token.Principal{UserID: n, Provider: "wechat", AppID: "wx0000000000000dev",
		OpenID:    strings.Clone(tok[n-28:]),
		SessionID: strings.Clone(tok[n-22:]), TokenID: strings.Clone(tok[n-22:]), ExpiresAt: p.exp}, nil
}

// BenchmarkCacheMemory reports the heap one cached token takes, for JWTs
// (about 330 characters) and opaque tokens (54), with 100 000 entries:
//
//	go test -run '^$' -bench CacheMemory -benchtime 1x ./modules/token/
func BenchmarkCacheMemory(b *testing.B) {
	const entries = 100_000
	for _, c := range []struct {
		name string
		len  int
	}{{"jwt", 330}, {"opaque", 54}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				toks := make([]string, entries)
				for i := range toks {
					s := fmt.Sprintf("%0*d", c.len, i)
					toks[i] = s
				}
				inner := principalInner{exp: time.Now().Add(time.Hour)}
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				cache, err := token.NewCached(inner, token.NewLocalFeed(), token.CacheOptions{Size: entries})
				if err != nil {
					b.Fatal(err)
				}
				for _, tok := range toks {
					if _, err := cache.Verify(context.Background(), tok); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				// Shards fill unevenly, so a full cache holds a little less than Size.
				held := cache.Len()
				if held < entries*95/100 {
					b.Fatalf("only %d entries held", held)
				}
				perEntry := float64(after.HeapAlloc-before.HeapAlloc) / float64(held)
				b.ReportMetric(perEntry, "B/entry")
				b.ReportMetric(perEntry*100_000/(1<<20), "MiB/100k")
				runtime.KeepAlive(cache)
				runtime.KeepAlive(toks)
			}
		})
	}
}
