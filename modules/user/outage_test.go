package user_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/user"
)

// TestDatabaseDownIsUnavailable: with the database cut, every call fails
// with ErrUnavailable — never ErrNotFound, which would log the user out —
// and verdicts stay verdicts once it is back.
func TestDatabaseDownIsUnavailable(t *testing.T) {
	for _, backend := range testutil.ServerBackends {
		t.Run(backend, func(t *testing.T) {
			cfg := testutil.DatabaseConfig(t, backend)
			proxy := testutil.NewProxy(t, map[string]string{"mariadb": testutil.MariaDBAddr, "postgres": testutil.PostgresAddr}[backend])
			if backend == "mariadb" {
				cfg = testutil.MariaDBVia(t, cfg, proxy.Addr())
			} else {
				cfg = testutil.PostgresVia(t, cfg, proxy.Addr())
			}
			s := user.NewEntStore(testutil.Open(t, cfg))
			ctx := context.Background()
			res, err := s.Login(ctx, mini("wxA", "o-1", ""))
			require.NoError(t, err)
			id := res.User.ID

			proxy.Stop()
			_, err = s.Get(ctx, id)
			require.ErrorIs(t, err, user.ErrUnavailable)
			require.False(t, errors.Is(err, user.ErrNotFound))
			_, err = s.Login(ctx, mini("wxA", "o-2", "u-2"))
			require.ErrorIs(t, err, user.ErrUnavailable)
			_, err = s.UpdateProfile(ctx, id, user.ProfileUpdate{Nickname: ptr("x")})
			require.ErrorIs(t, err, user.ErrUnavailable)
			_, err = s.Identity(ctx, id, user.IdentityKey{Provider: "wechat", AppID: "wxA", OpenID: "o-1"})
			require.ErrorIs(t, err, user.ErrUnavailable)

			proxy.Start(t)
			testutil.Eventually(t, 10*time.Second, func() bool { _, err := s.Get(ctx, id); return err == nil }, "the store recovers")
			_, err = s.Get(ctx, id+1000)
			require.ErrorIs(t, err, user.ErrNotFound)
			require.False(t, errors.Is(err, user.ErrUnavailable))
			_, err = s.UpdateProfile(ctx, id, user.ProfileUpdate{Nickname: ptr("")})
			var ve *user.ValidationError
			require.ErrorAs(t, err, &ve)
		})
	}
}
