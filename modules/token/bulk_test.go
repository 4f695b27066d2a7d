package token_test

import (
	"context"
	"testing"

	"github.com/wxlogin/wxlogin/modules/token"
)

// TestIssueMany: sessions issued in bulk (more than one batch) behave like
// those of Issue: they verify as their subject, refresh and are listed.
func TestIssueMany(t *testing.T) {
	ctx := context.Background()
	for _, k := range kinds {
		for _, backend := range backendsFor(k) {
			t.Run(k.name+"/"+backend, func(t *testing.T) {
				s := openStores(t, k, backend)
				st := build(t, k, s, testConfig(t, k.strategy, k.alg), token.Options{})
				subjects := subjectsFor(s)
				const n = 1500
				in := make([]token.Subject, n)
				for i := range in {
					if i < 3 {
						in[i] = subjects(t)
					} else {
						in[i] = in[i%3] // several sessions per user
					}
				}
				pairs, err := st.(token.BulkIssuer).IssueMany(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				if len(pairs) != n {
					t.Fatalf("%d pairs for %d subjects", len(pairs), n)
				}
				for _, i := range []int{0, 1, 2, 999, 1000, n - 1} {
					p := verifyOK(t, st, pairs[i].AccessToken)
					if p.UserID != in[i].UserID || p.SessionID != pairs[i].SessionID {
						t.Fatalf("pair %d verifies as %+v", i, p)
					}
				}
				if _, err := st.Refresh(ctx, pairs[n-1].RefreshToken); err != nil {
					t.Fatal(err)
				}
				list, err := st.Sessions(ctx, in[0].UserID)
				if err != nil || len(list) != n/3 {
					t.Fatalf("%d sessions listed (%v), want %d", len(list), err, n/3)
				}
			})
		}
	}
}
