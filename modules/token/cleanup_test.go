package token_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/token/tokentest"
)

func counts(t *testing.T, c *ent.Client) (access, sessions, revocations int) {
	t.Helper()
	ctx := context.Background()
	var err error
	if access, err = c.AccessToken.Query().Count(ctx); err != nil {
		t.Fatal(err)
	}
	if sessions, err = c.Session.Query().Count(ctx); err != nil {
		t.Fatal(err)
	}
	if revocations, err = c.Revocation.Query().Count(ctx); err != nil {
		t.Fatal(err)
	}
	return
}

func TestCleanerDeletesOnlyWhatExpired(t *testing.T) {
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			client := testutil.Database(t, backend)
			clock := tokentest.NewClock(time.Now())
			cfg := testConfig(t, token.NameDB, "")
			db, err := token.NewDB(client, token.Options{Config: cfg, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			cleaner := token.NewCleaner(client, time.Minute, nil, clock.Now)
			u := tokentest.EntSubjects(client)(t)

			a, _ := db.Issue(ctx, u)
			b, _ := db.Issue(ctx, u)
			if err := db.Revoke(ctx, verifyOK(t, db, b.AccessToken)); err != nil {
				t.Fatal(err)
			}
			if n, err := cleaner.Clean(ctx); err != nil || n != (token.Cleaned{}) {
				t.Fatalf("nothing expired yet, but a pass deleted %+v (%v)", n, err)
			}

			clock.Advance(testTTL + 2*time.Second)
			c, _ := db.Issue(ctx, u)
			n, err := cleaner.Clean(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// A revoked session's access token stays until it expires (Verify
			// tells why it is refused), then goes like any other.
			if n != (token.Cleaned{AccessTokens: 2, Revocations: 1}) {
				t.Fatalf("after the access TTL a pass deleted %+v, want a's and b's access tokens and b's revocation", n)
			}
			if acc, ses, rev := counts(t, client); acc != 1 || ses != 3 || rev != 0 {
				t.Fatalf("left %d access tokens, %d sessions, %d revocations; want 1, 3, 0", acc, ses, rev)
			}
			verifyOK(t, db, c.AccessToken)
			if _, err := db.Refresh(ctx, a.RefreshToken); err != nil {
				t.Fatalf("cleanup broke a live session: %v", err)
			}

			clock.Advance(testRefreshTTL + time.Second)
			if _, err := cleaner.Clean(ctx); err != nil {
				t.Fatal(err)
			}
			if acc, ses, rev := counts(t, client); acc != 0 || ses != 0 || rev != 0 {
				t.Fatalf("after the refresh TTL left %d access tokens, %d sessions, %d revocations", acc, ses, rev)
			}
		})
	}
}

func TestCleanerRunsAndStops(t *testing.T) {
	ctx := context.Background()
	client := testutil.SQLite(t)
	u := tokentest.EntSubjects(client)(t)
	clock := tokentest.NewClock(time.Now())
	db, err := token.NewDB(client, token.Options{Config: testConfig(t, token.NameDB, ""), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Issue(ctx, u); err != nil {
		t.Fatal(err)
	}
	clock.Advance(testTTL + time.Second)

	cleaner := token.NewCleaner(client, 10*time.Millisecond, nil, clock.Now)
	if err := cleaner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		acc, _, _ := counts(t, client)
		return acc == 0
	}, "the background job did not delete the expired access token")
	if err := cleaner.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	noBackgroundGoroutines(t)
}

// noBackgroundGoroutines checks that no goroutine of this package's
// background jobs (feeds, cleaner) is left running.
func noBackgroundGoroutines(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "modules/token.(*runner).start")
	}, "a background goroutine of the token module is still running")
}
