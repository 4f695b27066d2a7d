package token_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/modules/token"
)

// TestSessionOwner: every strategy, cached or not, names the user a
// session belongs to, and knows no owner for ids it never issued.
func TestSessionOwner(t *testing.T) {
	for _, k := range kinds {
		backend := backendsFor(k)[0]
		t.Run(k.name+"/"+backend, func(t *testing.T) {
			s := openStores(t, k, backend)
			feed := token.NewLocalFeed()
			st := build(t, k, s, testConfig(t, k.strategy, k.alg), token.Options{Feed: feed})
			c, err := token.NewCached(st, feed, token.CacheOptions{Size: 10})
			require.NoError(t, err)
			t.Cleanup(c.Close)
			ctx := context.Background()
			subj := subjectsFor(s)(t)
			pair, err := c.Issue(ctx, subj)
			require.NoError(t, err)
			for _, o := range []token.SessionOwner{st.(token.SessionOwner), c} {
				uid, err := o.SessionOwner(ctx, pair.SessionID)
				require.NoError(t, err)
				require.Equal(t, subj.UserID, uid)
				for _, bad := range []string{"", "nope", pair.SessionID + "x", "AAAAAAAAAAAAAAAAAAAAAA"} {
					_, err = o.SessionOwner(ctx, bad)
					require.ErrorIs(t, err, token.ErrSessionNotFound, "%q", bad)
				}
			}
			require.NoError(t, c.RevokeSession(ctx, subj.UserID, pair.SessionID, token.ReasonRevoked))
			_, err = c.Verify(ctx, pair.AccessToken)
			require.Equal(t, token.ReasonRevoked, token.ReasonOf(err))
		})
	}
}
