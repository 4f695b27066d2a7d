package user_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/ent"
	entidentity "github.com/wxlogin/wxlogin/ent/identity"
	entsession "github.com/wxlogin/wxlogin/ent/session"
	entunionlink "github.com/wxlogin/wxlogin/ent/unionlink"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/user"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// of returns the events of type T heard so far.
func of[T user.Event](e *events) []T {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []T
	for _, ev := range e.all {
		if x, ok := ev.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// session stores a session row of the user as the token strategies do.
func addSession(t *testing.T, client *ent.Client, userID int, appid, openid string) string {
	t.Helper()
	id := testutil.RandomName("s")
	now := time.Now().UTC()
	require.NoError(t, client.Session.Create().SetID(id).SetUserID(userID).SetAppid(appid).SetOpenid(openid).
		SetDevice("小明的 iPhone").SetRefreshHash(strings.Repeat("a", 64)).SetRefreshExpiresAt(now.Add(time.Hour)).
		SetCreatedAt(now).SetUpdatedAt(now).Exec(context.Background()))
	return id
}

// TestLifecycleContract runs bans, deletion and erasure against every backend.
func TestLifecycleContract(t *testing.T) {
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			client, opts := storeFor(t, backend)
			ev := &events{}
			clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
			var hookSaw []string
			var failDelete bool
			hook := func(ctx context.Context, tx *ent.Tx, userID int) error {
				ids, err := tx.Identity.Query().Where(entidentity.UserID(userID)).All(ctx)
				if err != nil {
					return err
				}
				for _, id := range ids {
					hookSaw = append(hookSaw, id.Openid)
				}
				if failDelete {
					return errors.New("the orders service is down")
				}
				return nil
			}
			s := user.NewEntStore(client, append(opts, user.WithListeners(ev.listen), user.WithClock(clk.now), user.WithDeleteHooks(hook))...)
			ctx := context.Background()

			t.Run("a ban refuses every login of the person and writes nothing", func(t *testing.T) {
				r, err := s.Login(ctx, mini("wxA", "o-ban", "u-ban"))
				require.NoError(t, err)
				before := *r.Identity.LastLoginAt
				clk.add(time.Minute)
				u, err := s.Ban(ctx, r.User.ID, user.Ban{Reason: "spam"})
				require.NoError(t, err)
				require.Equal(t, user.StatusBanned, user.StatusOf(u, clk.now()))
				require.Equal(t, []user.Banned{{UserID: r.User.ID}}, of[user.Banned](ev))

				_, err = s.Login(ctx, mini("wxA", "o-ban", "u-ban"))
				var be *user.BannedError
				require.ErrorAs(t, err, &be)
				require.Nil(t, be.Until, "a ban without end")
				require.ErrorIs(t, err, user.ErrBanned)
				_, err = s.Login(ctx, mini("wxB", "o-ban-b", "u-ban"))
				require.ErrorIs(t, err, user.ErrBanned, "through another app of the same person too")
				id, err := s.Identity(ctx, r.User.ID, user.KeyOf(r.Identity))
				require.NoError(t, err)
				require.True(t, before.Equal(*id.LastLoginAt), "a refused login records nothing")
				_, err = client.Identity.Query().Where(entidentity.Appid("wxB"), entidentity.Openid("o-ban-b")).Only(ctx)
				require.True(t, ent.IsNotFound(err), "nor an identity")
				require.ErrorIs(t, s.CheckActive(ctx, r.User.ID), user.ErrBanned)

				u, err = s.Unban(ctx, r.User.ID)
				require.NoError(t, err)
				require.Equal(t, user.StatusActive, user.StatusOf(u, clk.now()))
				require.Empty(t, u.BanReason)
				require.Equal(t, []user.Unbanned{{UserID: r.User.ID}}, of[user.Unbanned](ev))
				_, err = s.Login(ctx, mini("wxA", "o-ban", "u-ban"))
				require.NoError(t, err)
				require.NoError(t, s.CheckActive(ctx, r.User.ID))
				_, err = s.Unban(ctx, r.User.ID)
				require.NoError(t, err)
				require.Len(t, of[user.Unbanned](ev), 1, "unbanning an active user tells nobody")
			})

			t.Run("a ban with an end lapses by itself", func(t *testing.T) {
				r, err := s.Login(ctx, mini("wxA", "o-lapse", ""))
				require.NoError(t, err)
				until := clk.now().Add(time.Hour)
				_, err = s.Ban(ctx, r.User.ID, user.Ban{Reason: "cool down", Until: &until})
				require.NoError(t, err)
				_, err = s.Login(ctx, mini("wxA", "o-lapse", ""))
				var be *user.BannedError
				require.ErrorAs(t, err, &be)
				require.True(t, until.Equal(*be.Until), "the login is told when the ban ends")

				clk.add(time.Hour) // at until, the ban is over
				res, err := s.Login(ctx, mini("wxA", "o-lapse", ""))
				require.NoError(t, err)
				require.Equal(t, user.StatusActive, user.StatusOf(res.User, clk.now()))
				n, err := s.LapseBans(ctx)
				require.NoError(t, err)
				require.Equal(t, 1, n)
				require.Contains(t, of[user.Unbanned](ev), user.Unbanned{UserID: r.User.ID, Lapsed: true})
				n, err = s.LapseBans(ctx)
				require.NoError(t, err)
				require.Zero(t, n, "told once")
				u, err := s.Get(ctx, r.User.ID)
				require.NoError(t, err)
				require.EqualValues(t, "active", u.Status)
				require.Nil(t, u.BannedUntil)
			})

			t.Run("bans are validated and need a living user", func(t *testing.T) {
				r, err := s.Login(ctx, mini("wxA", "o-valid", ""))
				require.NoError(t, err)
				past := clk.now().Add(-time.Second)
				var ve *user.ValidationError
				_, err = s.Ban(ctx, r.User.ID, user.Ban{Reason: "x", Until: &past})
				require.ErrorAs(t, err, &ve)
				require.Equal(t, "until", ve.Field)
				_, err = s.Ban(ctx, r.User.ID, user.Ban{Reason: "  "})
				require.ErrorAs(t, err, &ve)
				require.Equal(t, "reason", ve.Field)
				_, err = s.Ban(ctx, r.User.ID, user.Ban{Reason: strings.Repeat("长", user.MaxBanReasonRunes+1)})
				require.ErrorAs(t, err, &ve)
				_, err = s.Ban(ctx, 987654, user.Ban{Reason: "x"})
				require.ErrorIs(t, err, user.ErrNotFound)
				require.ErrorIs(t, s.CheckActive(ctx, 987654), user.ErrNotFound)
			})

			t.Run("a merge with a banned user is refused whole", func(t *testing.T) {
				older, err := s.Login(ctx, mini("wxA", "o-m1", "u-merge-ban"))
				require.NoError(t, err)
				younger, err := s.Login(ctx, mini("wxB", "o-m2", ""))
				require.NoError(t, err)
				_, err = s.Ban(ctx, older.User.ID, user.Ban{Reason: "fraud"})
				require.NoError(t, err)
				_, err = s.Login(ctx, mini("wxB", "o-m2", "u-merge-ban"))
				require.ErrorIs(t, err, user.ErrBanned, "the person is banned")
				u, err := s.Get(ctx, younger.User.ID)
				require.NoError(t, err)
				require.Equal(t, user.StatusActive, user.StatusOf(u, clk.now()), "nothing merged")
				require.Nil(t, u.Edges.Identities[0].Unionid)
				_, err = s.LinkUnionID(ctx, younger.User.ID, user.KeyOf(younger.Identity), "u-merge-ban")
				require.ErrorIs(t, err, user.ErrBanned)
				require.NoError(t, s.CheckActive(ctx, younger.User.ID))
			})

			t.Run("deletion erases every personal datum and a later login starts afresh", func(t *testing.T) {
				a, err := s.Login(ctx, mini("wxA", "o-del-a", "u-del"))
				require.NoError(t, err)
				_, err = s.Login(ctx, oauth("wxH5", "o-del-h", "u-del"))
				require.NoError(t, err)
				id := a.User.ID
				_, err = s.UpdateProfile(ctx, id, user.ProfileUpdate{Nickname: ptr("小删"), AvatarURL: ptr("https://example.com/a.png")})
				require.NoError(t, err)
				_, err = s.SetPhone(ctx, id, user.Phone{PureNumber: "13800009999", CountryCode: "86"})
				require.NoError(t, err)
				sid := addSession(t, client, id, "wxA", "o-del-a")
				until := clk.now().Add(time.Hour)
				_, err = s.Ban(ctx, id, user.Ban{Reason: "a reason about 小删", Until: &until})
				require.NoError(t, err)

				failDelete, hookSaw = true, nil
				require.ErrorIs(t, s.Delete(ctx, id, user.CauseUser), user.ErrDeleteAborted)
				failDelete = false
				u, err := s.Get(ctx, id)
				require.NoError(t, err, "a failing hook leaves the user as they were")
				require.Equal(t, "小删", u.Nickname)
				require.Len(t, u.Edges.Identities, 2)

				hookSaw = nil
				require.NoError(t, s.Delete(ctx, id, user.CauseUser))
				require.ElementsMatch(t, []string{"o-del-a", "o-del-h"}, hookSaw, "hooks run first, in the transaction")
				require.Equal(t, []user.Deleted{{UserID: id, Cause: user.CauseUser}}, of[user.Deleted](ev))
				_, err = s.Get(ctx, id)
				require.ErrorIs(t, err, user.ErrNotFound)
				require.ErrorIs(t, s.CheckActive(ctx, id), user.ErrNotFound)

				row, err := client.User.Get(ctx, id)
				require.NoError(t, err)
				require.EqualValues(t, "deleted", row.Status)
				require.Empty(t, row.Nickname)
				require.Empty(t, row.AvatarURL)
				require.Nil(t, row.Phone)
				require.Nil(t, row.PhoneCountryCode)
				require.Nil(t, row.BannedUntil)
				require.Empty(t, row.BanReason)
				n, err := client.Identity.Query().Where(entidentity.UserID(id)).Count(ctx)
				require.NoError(t, err)
				require.Zero(t, n)
				n, err = client.UnionLink.Query().Where(entunionlink.UserID(id)).Count(ctx)
				require.NoError(t, err)
				require.Zero(t, n)
				sess, err := client.Session.Get(ctx, sid)
				require.NoError(t, err)
				require.Empty(t, sess.Openid, "the session keeps no openid")
				require.Empty(t, sess.Device)

				require.NoError(t, s.Delete(ctx, id, user.CauseUser), "deleting again changes nothing")
				require.Len(t, of[user.Deleted](ev), 1)
				require.ErrorIs(t, s.Delete(ctx, 987654, user.CauseOperator), user.ErrNotFound)
				_, err = s.Ban(ctx, id, user.Ban{Reason: "x"})
				require.ErrorIs(t, err, user.ErrNotFound)

				again, err := s.Login(ctx, mini("wxA", "o-del-a", "u-del"))
				require.NoError(t, err)
				require.True(t, again.Created, "the same account makes a new user")
				require.NotEqual(t, id, again.User.ID)
				require.Empty(t, again.User.Nickname)
				require.Nil(t, again.User.Phone)
				require.Equal(t, []string{"wxA/o-del-a"}, keys(again.User))
			})

			t.Run("a merged user cannot be deleted, the survivor can", func(t *testing.T) {
				older, err := s.Login(ctx, mini("wxA", "o-dm1", "u-dm"))
				require.NoError(t, err)
				younger, err := s.Login(ctx, mini("wxB", "o-dm2", ""))
				require.NoError(t, err)
				_, err = s.Login(ctx, mini("wxB", "o-dm2", "u-dm"))
				require.NoError(t, err)
				require.ErrorIs(t, s.Delete(ctx, younger.User.ID, user.CauseOperator), user.ErrNotFound)
				require.NoError(t, s.Delete(ctx, older.User.ID, user.CauseOperator))
				n, err := client.Identity.Query().Where(entidentity.OpenidIn("o-dm1", "o-dm2")).Count(ctx)
				require.NoError(t, err)
				require.Zero(t, n)
			})

			t.Run("removing an identity keeps the user until the last one", func(t *testing.T) {
				a, err := s.Login(ctx, mini("wxA", "o-ri-a", "u-ri"))
				require.NoError(t, err)
				_, err = s.Login(ctx, mini("wxB", "o-ri-b", "u-ri"))
				require.NoError(t, err)
				other := mini("1101", "o-ri-qq", "u-ri-qq")
				other.Provider = "qq"
				_, err = s.Bind(ctx, a.User.ID, other)
				require.NoError(t, err)
				sidA := addSession(t, client, a.User.ID, "wxA", "o-ri-a")
				sidB := addSession(t, client, a.User.ID, "wxB", "o-ri-b")

				keyA := user.IdentityKey{Provider: "wechat", AppID: "wxA", OpenID: "o-ri-a"}
				rm, err := s.RemoveIdentity(ctx, keyA, user.CausePlatform)
				require.NoError(t, err)
				require.Equal(t, user.Removal{UserID: a.User.ID}, rm)
				require.Contains(t, of[user.IdentityRemoved](ev), user.IdentityRemoved{UserID: a.User.ID, Identity: keyA, Cause: user.CausePlatform})
				u, err := s.Get(ctx, a.User.ID)
				require.NoError(t, err)
				require.Equal(t, []string{"wxB/o-ri-b", "1101/o-ri-qq"}, keys(u))
				n, err := client.UnionLink.Query().Where(entunionlink.Unionid("u-ri")).Count(ctx)
				require.NoError(t, err)
				require.Equal(t, 1, n, "B still carries the unionid")
				sa, err := client.Session.Get(ctx, sidA)
				require.NoError(t, err)
				require.Empty(t, sa.Openid)
				sb, err := client.Session.Get(ctx, sidB)
				require.NoError(t, err)
				require.Equal(t, "o-ri-b", sb.Openid, "other identities' sessions untouched")
				_, err = s.RemoveIdentity(ctx, keyA, user.CausePlatform)
				require.ErrorIs(t, err, user.ErrNotFound, "a replay finds nothing")

				rm, err = s.RemoveIdentity(ctx, user.IdentityKey{Provider: "wechat", AppID: "wxB", OpenID: "o-ri-b"}, user.CausePlatform)
				require.NoError(t, err)
				require.False(t, rm.UserDeleted)
				n, err = client.UnionLink.Query().Where(entunionlink.Unionid("u-ri")).Count(ctx)
				require.NoError(t, err)
				require.Zero(t, n, "no identity carries the unionid any more")

				rm, err = s.RemoveIdentity(ctx, user.IdentityKey{Provider: "qq", AppID: "1101", OpenID: "o-ri-qq"}, user.CausePlatform)
				require.NoError(t, err)
				require.True(t, rm.UserDeleted, "the last identity takes the user with it")
				require.Contains(t, of[user.Deleted](ev), user.Deleted{UserID: a.User.ID, Cause: user.CausePlatform})
				_, err = s.Get(ctx, a.User.ID)
				require.ErrorIs(t, err, user.ErrNotFound)
			})

			t.Run("profile fields are cleared and listeners told", func(t *testing.T) {
				r, err := s.Login(ctx, mini("wxA", "o-clear", ""))
				require.NoError(t, err)
				_, err = s.UpdateProfile(ctx, r.User.ID, user.ProfileUpdate{Nickname: ptr("小清"), AvatarURL: ptr("https://example.com/c.png")})
				require.NoError(t, err)
				_, err = s.SetPhone(ctx, r.User.ID, user.Phone{PureNumber: "13800001111"})
				require.NoError(t, err)
				u, err := s.ClearProfile(ctx, r.User.ID, user.ProfileClear{Fields: []user.Field{user.FieldPhone}, Cause: "test", RevokeInfo: []int{8}})
				require.NoError(t, err)
				require.Nil(t, u.Phone)
				require.Equal(t, "小清", u.Nickname)
				u, err = s.ClearProfile(ctx, r.User.ID, user.ProfileClear{Fields: []user.Field{user.FieldNickname, user.FieldAvatar, user.FieldNickname}})
				require.NoError(t, err)
				require.Empty(t, u.Nickname)
				require.Empty(t, u.AvatarURL)
				cleared := of[user.ProfileCleared](ev)
				require.Equal(t, user.ProfileCleared{UserID: r.User.ID, Fields: []user.Field{user.FieldPhone}, Cause: "test", RevokeInfo: []int{8}}, cleared[len(cleared)-2])
				require.Equal(t, []user.Field{user.FieldNickname, user.FieldAvatar}, cleared[len(cleared)-1].Fields)
				_, err = s.ClearProfile(ctx, r.User.ID, user.ProfileClear{Fields: []user.Field{"address"}})
				var ve *user.ValidationError
				require.ErrorAs(t, err, &ve)
				_, err = s.ClearProfile(ctx, 987654, user.ProfileClear{})
				require.ErrorIs(t, err, user.ErrNotFound)
			})

			t.Run("operators find users by openid, unionid or phone", func(t *testing.T) {
				a, err := s.Login(ctx, mini("wxA", "o-find", "u-find"))
				require.NoError(t, err)
				_, err = s.SetPhone(ctx, a.User.ID, user.Phone{PureNumber: "13700001234", CountryCode: "86"})
				require.NoError(t, err)
				b, err := s.Login(ctx, mini("wxB", "o-find", ""))
				require.NoError(t, err)
				found, err := s.Find(ctx, user.Query{OpenID: "o-find"})
				require.NoError(t, err)
				require.Len(t, found, 2, "one openid on two apps")
				require.Equal(t, a.User.ID, found[0].ID)
				require.Equal(t, b.User.ID, found[1].ID)
				for _, u := range found {
					for _, id := range u.Edges.Identities {
						require.Empty(t, id.SessionKey)
					}
				}
				found, err = s.Find(ctx, user.Query{UnionID: "u-find"})
				require.NoError(t, err)
				require.Len(t, found, 1)
				found, err = s.Find(ctx, user.Query{Phone: "+8613700001234"})
				require.NoError(t, err)
				require.Len(t, found, 1)
				require.Equal(t, a.User.ID, found[0].ID)
				found, err = s.Find(ctx, user.Query{Phone: "13700009999"})
				require.NoError(t, err)
				require.Empty(t, found)
				var ve *user.ValidationError
				_, err = s.Find(ctx, user.Query{})
				require.ErrorAs(t, err, &ve)
				_, err = s.Find(ctx, user.Query{OpenID: "o", Phone: "1"})
				require.ErrorAs(t, err, &ve)
				u, err := s.UserOf(ctx, user.IdentityKey{Provider: "wechat", AppID: "wxB", OpenID: "o-find"})
				require.NoError(t, err)
				require.Equal(t, b.User.ID, u.ID)
				_, err = s.UserOf(ctx, user.IdentityKey{Provider: "wechat", AppID: "wxB", OpenID: "nobody"})
				require.ErrorIs(t, err, user.ErrNotFound)
			})

			t.Run("a listener's panic breaks nothing", func(t *testing.T) {
				p := user.NewEntStore(client, user.WithListeners(func(context.Context, user.Event) { panic("boom") }))
				r, err := p.Login(ctx, mini("wxA", "o-panic", ""))
				require.NoError(t, err)
				_, err = p.Ban(ctx, r.User.ID, user.Ban{Reason: "x"})
				require.NoError(t, err)
				require.NoError(t, p.Delete(ctx, r.User.ID, user.CauseUser))
			})
		})
	}
}

// TestConcurrentDeleteAndLogin: a deletion racing logins of the same
// account leaves either the deleted tombstone and a new user, never an
// identity pointing at a deleted user.
func TestConcurrentDeleteAndLogin(t *testing.T) {
	for _, backend := range append(append([]string{}, testutil.ServerBackends...), "mariadb+batch") {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			client, opts := storeFor(t, backend)
			s := user.NewEntStore(client, opts...)
			ctx := context.Background()
			r, err := s.Login(ctx, mini("wxA", "o-race", "u-race"))
			require.NoError(t, err)
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i == 5 {
						if err := s.Delete(ctx, r.User.ID, user.CauseUser); err != nil {
							t.Errorf("delete: %v", err)
						}
						return
					}
					if _, err := s.Login(ctx, mini("wxA", "o-race", "u-race")); err != nil && !errors.Is(err, user.ErrNotFound) {
						t.Errorf("login: %v", err)
					}
				}()
			}
			wg.Wait()
			ids, err := client.Identity.Query().Where(entidentity.Openid("o-race")).All(ctx)
			require.NoError(t, err)
			for _, id := range ids {
				require.NotEqual(t, r.User.ID, id.UserID, fmt.Sprintf("identity %d still names the deleted user", id.ID))
			}
			n, err := client.Session.Query().Where(entsession.UserID(r.User.ID)).Count(ctx)
			require.NoError(t, err)
			require.Zero(t, n)
		})
	}
}
