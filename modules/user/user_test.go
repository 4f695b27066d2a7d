package user_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	entuser "github.com/wxlogin/wxlogin/ent/user"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/user"
)

func ptr(s string) *string { return &s }

// TestStoreContract runs the same behaviour against every backend.
func TestStoreContract(t *testing.T) {
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			client := testutil.Database(t, backend)
			s := user.NewEntStore(client)
			ctx := context.Background()

			t.Run("login creates then finds the same user", func(t *testing.T) {
				u1, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "o-1", SessionKey: "k1"})
				require.NoError(t, err)
				require.NotNil(t, u1.LastLoginAt)
				u2, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "o-1", SessionKey: "k2", UnionID: "u-1"})
				require.NoError(t, err)
				require.Equal(t, u1.ID, u2.ID)
				require.Equal(t, "k2", u2.SessionKey, "newest session_key kept")
				require.Equal(t, "u-1", *u2.Unionid)
				u3, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "o-1", SessionKey: "k3"})
				require.NoError(t, err)
				require.Equal(t, "u-1", *u3.Unionid, "a login without unionid does not erase it")
			})

			t.Run("same openid under another appid is another user", func(t *testing.T) {
				a, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "o-2", SessionKey: "k"})
				require.NoError(t, err)
				b, err := s.Login(ctx, user.LoginInput{AppID: "wxB", OpenID: "o-2", SessionKey: "k"})
				require.NoError(t, err)
				require.NotEqual(t, a.ID, b.ID)
			})

			t.Run("login refuses empty identity", func(t *testing.T) {
				_, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "", SessionKey: "k"})
				require.Error(t, err)
			})

			t.Run("profile update validates before writing", func(t *testing.T) {
				u, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "o-3", SessionKey: "k"})
				require.NoError(t, err)
				got, err := s.UpdateProfile(ctx, u.ID, user.ProfileUpdate{Nickname: ptr("  小明 "), AvatarURL: ptr("https://example.com/a.png")})
				require.NoError(t, err)
				require.Equal(t, "小明", got.Nickname)
				require.Equal(t, "https://example.com/a.png", got.AvatarURL)

				_, err = s.UpdateProfile(ctx, u.ID, user.ProfileUpdate{Nickname: ptr("ok"), AvatarURL: ptr("javascript:alert(1)")})
				var ve *user.ValidationError
				require.ErrorAs(t, err, &ve)
				require.Equal(t, "avatar_url", ve.Field)
				again, err := s.Get(ctx, u.ID)
				require.NoError(t, err)
				require.Equal(t, "小明", again.Nickname, "nothing half-written")
			})

			t.Run("phone stored", func(t *testing.T) {
				u, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "o-4", SessionKey: "k"})
				require.NoError(t, err)
				got, err := s.SetPhone(ctx, u.ID, user.Phone{Number: "+86 13800000000", PureNumber: "13800000000", CountryCode: "86"})
				require.NoError(t, err)
				require.Equal(t, "13800000000", *got.Phone)
				require.Equal(t, "86", *got.PhoneCountryCode)
			})

			t.Run("unknown user", func(t *testing.T) {
				_, err := s.Get(ctx, 987654)
				require.ErrorIs(t, err, user.ErrNotFound)
				_, err = s.UpdateProfile(ctx, 987654, user.ProfileUpdate{Nickname: ptr("x")})
				require.ErrorIs(t, err, user.ErrNotFound)
			})

			t.Run("the public view never carries the session_key", func(t *testing.T) {
				u, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "o-5", SessionKey: "SECRET-session-key"})
				require.NoError(t, err)
				for _, v := range []any{user.View(u), u} {
					b, err := json.Marshal(v)
					require.NoError(t, err)
					require.NotContains(t, string(b), "SECRET-session-key")
				}
				require.NotContains(t, u.String(), "SECRET-session-key")
			})
		})
	}
}

// TestConcurrentFirstLogins: 30 first logins of one openid at once make
// exactly one row.
func TestConcurrentFirstLogins(t *testing.T) {
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			client := testutil.Database(t, backend)
			s := user.NewEntStore(client)
			ctx := context.Background()
			const n = 30
			ids := make([]int, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					u, err := s.Login(ctx, user.LoginInput{AppID: "wxA", OpenID: "same-openid", SessionKey: fmt.Sprintf("k%d", i)})
					errs[i] = err
					if u != nil {
						ids[i] = u.ID
					}
				}()
			}
			close(start)
			wg.Wait()
			require.NoError(t, errors.Join(errs...))
			for _, id := range ids {
				require.Equal(t, ids[0], id)
			}
			count, err := client.User.Query().Where(entuser.Openid("same-openid")).Count(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, count)
		})
	}
}

func TestValidateNickname(t *testing.T) {
	cases := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"小明", "小明", false},
		{"  Bob  ", "Bob", false},
		{"", "", true},
		{"   ", "", true},
		{string([]byte{0xff, 0xfe}), "", true},
		{"a\x00b", "", true},
		{strings.Repeat("字", user.MaxNicknameRunes), strings.Repeat("字", user.MaxNicknameRunes), false},
		{strings.Repeat("字", user.MaxNicknameRunes+1), "", true},
	}
	for _, c := range cases {
		got, err := user.ValidateNickname(c.in)
		if c.wantErr {
			require.Error(t, err, "%q", c.in)
			continue
		}
		require.NoError(t, err, "%q", c.in)
		require.Equal(t, c.want, got)
	}
}

func TestValidateAvatarURL(t *testing.T) {
	ok := []string{"", "https://thirdwx.qlogo.cn/mmopen/x/132", "http://127.0.0.1:8080/avatars/a.png"}
	bad := []string{"ftp://x/y", "/relative.png", "https://", "javascript:alert(1)", "https://user:pw@host/x", "https://x/" + strings.Repeat("a", user.MaxAvatarURLLen)}
	for _, a := range ok {
		_, err := user.ValidateAvatarURL(a)
		require.NoError(t, err, a)
	}
	for _, a := range bad {
		_, err := user.ValidateAvatarURL(a)
		require.Error(t, err, a)
	}
}
