package token_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/token"
)

// FuzzParse gives every strategy arbitrary access and refresh tokens: the
// only answers allowed are the typed refusals, never a panic, another error
// or a success.
func FuzzParse(f *testing.F) {
	client := testutil.SQLite(f)
	rdb, prefix := testutil.Redis(f)
	cfg := config.Token{
		Strategy: "jwt", Secret: strings.Repeat("s", 32), TTL: time.Hour, RefreshTTL: 24 * time.Hour,
		Issuer: "wxlogin", JWTAlg: "HS256",
	}
	keys, err := token.NewKeySet(cfg)
	if err != nil {
		f.Fatal(err)
	}
	o := token.Options{Config: cfg}
	jwtS, err := token.NewJWT(client, keys, token.NewDBDenyList(client), o)
	if err != nil {
		f.Fatal(err)
	}
	dbS, err := token.NewDB(client, o)
	if err != nil {
		f.Fatal(err)
	}
	redisS, err := token.NewRedis(rdb, prefix, o)
	if err != nil {
		f.Fatal(err)
	}
	strategies := []token.Strategy{jwtS, dbS, redisS}
	ctx := context.Background()
	u, err := client.User.Create().Save(ctx)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strategies {
		p, err := s.Issue(ctx, token.Subject{UserID: u.ID, AppID: "wx", OpenID: "fuzz"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.AccessToken, p.RefreshToken)
		f.Add(p.AccessToken+"x", p.RefreshToken[:len(p.RefreshToken)/2])
	}
	f.Add("", "")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "a.b.c")
	f.Add("....", "....")
	f.Add(strings.Repeat("A", 4096), "\x00.\xff")
	f.Fuzz(func(t *testing.T, access, refresh string) {
		for _, s := range strategies {
			if _, err := s.Verify(ctx, access); err == nil {
				// Only the untouched seeds are real tokens.
				continue
			} else if !errors.Is(err, token.ErrUnauthenticated) {
				t.Fatalf("%s Verify(%q): %v", s.Name(), access, err)
			}
			if _, err := s.Refresh(ctx, refresh); err != nil &&
				!errors.Is(err, token.ErrInvalidRefresh) && !errors.Is(err, token.ErrRefreshReused) {
				t.Fatalf("%s Refresh(%q): %v", s.Name(), refresh, err)
			}
		}
	})
}
