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
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxlogin/wxlogin/ent"
	entidentity "github.com/wxlogin/wxlogin/ent/identity"
	entuser "github.com/wxlogin/wxlogin/ent/user"
	"github.com/wxlogin/wxlogin/internal/seal"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/user"
)

func ptr(s string) *string { return &s }

// storeBackends are the databases the contracts run on; "mariadb+batch" is
// MariaDB with the one-round-trip login of production.
var storeBackends = append(append([]string{}, testutil.Backends...), "mariadb+batch")

// storeFor opens a backend and the store options it needs.
func storeFor(t *testing.T, backend string) (*ent.Client, []user.Option) {
	t.Helper()
	if backend != "mariadb+batch" {
		return testutil.Database(t, backend), nil
	}
	cfg := testutil.MariaDBConfig(t)
	client := testutil.Open(t, cfg)
	b, err := database.OpenBatch(cfg)
	require.NoError(t, err)
	require.NotNil(t, b)
	t.Cleanup(func() { b.Close() })
	return client, []user.Option{user.WithBatch(b)}
}

// mini and oauth are logins through a mini program and an OAuth app.
func mini(appid, openid, unionid string) user.LoginInput {
	return user.LoginInput{Provider: "wechat", Kind: "miniprogram", AppID: appid, OpenID: openid, UnionID: unionid, SessionKey: "key-" + openid}
}

func oauth(appid, openid, unionid string) user.LoginInput {
	return user.LoginInput{Provider: "wechat", Kind: "oauth", AppID: appid, OpenID: openid, UnionID: unionid}
}

// events records what listeners hear.
type events struct {
	mu  sync.Mutex
	all []user.Event
}

func (e *events) listen(_ context.Context, ev user.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) merged() []user.Merged {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []user.Merged
	for _, ev := range e.all {
		if m, ok := ev.(user.Merged); ok {
			out = append(out, m)
		}
	}
	return out
}

func keys(u *ent.User) []string {
	var out []string
	for _, id := range u.Edges.Identities {
		out = append(out, id.Appid+"/"+id.Openid)
	}
	return out
}

// ordersTable is a business module's own table, moved by a merge hook.
const ordersTable = "biz_orders"

func createOrders(t *testing.T, client *ent.Client) {
	t.Helper()
	_, err := client.ExecContext(context.Background(), "CREATE TABLE "+ordersTable+" (id INTEGER NOT NULL PRIMARY KEY, user_id INTEGER NOT NULL)")
	require.NoError(t, err)
}

func orderOwner(t *testing.T, client *ent.Client, id int) int {
	t.Helper()
	rows, err := client.QueryContext(context.Background(), "SELECT user_id FROM "+ordersTable+" WHERE id = "+fmt.Sprint(id))
	require.NoError(t, err)
	defer rows.Close()
	require.True(t, rows.Next())
	var owner int
	require.NoError(t, rows.Scan(&owner))
	return owner
}

func moveOrders(ctx context.Context, tx *ent.Tx, from, into int) error {
	_, err := tx.ExecContext(ctx, "UPDATE "+ordersTable+" SET user_id = "+fmt.Sprint(into)+" WHERE user_id = "+fmt.Sprint(from))
	return err
}

// TestStoreContract runs the same behaviour against every backend.
func TestStoreContract(t *testing.T) {
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			client, base := storeFor(t, backend)
			newStore := func(opts ...user.Option) *user.EntStore {
				return user.NewEntStore(client, append(append([]user.Option{}, base...), opts...)...)
			}
			ev := &events{}
			s := newStore(user.WithListeners(ev.listen))
			ctx := context.Background()

			t.Run("login creates then finds the same user", func(t *testing.T) {
				r1, err := s.Login(ctx, mini("wxA", "o-1", ""))
				require.NoError(t, err)
				require.True(t, r1.Created)
				require.NotNil(t, r1.Identity.LastLoginAt)
				in := mini("wxA", "o-1", "u-1")
				in.SessionKey = "k2"
				r2, err := s.Login(ctx, in)
				require.NoError(t, err)
				require.False(t, r2.Created)
				require.Equal(t, r1.User.ID, r2.User.ID)
				require.Equal(t, "k2", r2.Identity.SessionKey, "newest session_key kept on the identity")
				require.Equal(t, "u-1", *r2.Identity.Unionid)
				r3, err := s.Login(ctx, mini("wxA", "o-1", ""))
				require.NoError(t, err)
				require.Equal(t, "u-1", *r3.Identity.Unionid, "a login without unionid does not erase it")
				require.Equal(t, []string{"wxA/o-1"}, keys(r3.User))
			})

			t.Run("one person through two mini programs and an oauth app is one user", func(t *testing.T) {
				a, err := s.Login(ctx, mini("wxA", "o-a", "u-person"))
				require.NoError(t, err)
				b, err := s.Login(ctx, mini("wxB", "o-b", "u-person"))
				require.NoError(t, err)
				c, err := s.Login(ctx, oauth("wxH5", "o-h", "u-person"))
				require.NoError(t, err)
				require.Equal(t, a.User.ID, b.User.ID)
				require.Equal(t, a.User.ID, c.User.ID)
				require.False(t, b.Created)
				require.Equal(t, []string{"wxA/o-a", "wxB/o-b", "wxH5/o-h"}, keys(c.User))
				require.Equal(t, "oauth", c.Identity.Kind)
				require.Empty(t, c.Identity.SessionKey, "oauth apps have no session key")
			})

			t.Run("unionids are platform-scoped", func(t *testing.T) {
				a, err := s.Login(ctx, mini("wxA", "o-scope", "u-scope"))
				require.NoError(t, err)
				in := mini("1101", "o-scope-qq", "u-scope")
				in.Provider = "qq"
				b, err := s.Login(ctx, in)
				require.NoError(t, err)
				require.NotEqual(t, a.User.ID, b.User.ID, "a QQ unionid never links to a WeChat one")
			})

			t.Run("same openid under another appid is another user", func(t *testing.T) {
				a, err := s.Login(ctx, mini("wxA", "o-2", ""))
				require.NoError(t, err)
				b, err := s.Login(ctx, mini("wxB", "o-2", ""))
				require.NoError(t, err)
				require.NotEqual(t, a.User.ID, b.User.ID)
			})

			t.Run("login refuses an empty identity", func(t *testing.T) {
				_, err := s.Login(ctx, mini("wxA", "", ""))
				require.Error(t, err)
			})

			t.Run("an oauth profile fills only what is empty", func(t *testing.T) {
				in := oauth("wxH5", "o-prof", "")
				in.Nickname, in.AvatarURL = "小明", "https://thirdwx.qlogo.cn/mmopen/a/132"
				r, err := s.Login(ctx, in)
				require.NoError(t, err)
				require.Equal(t, "小明", r.User.Nickname)
				require.Equal(t, "https://thirdwx.qlogo.cn/mmopen/a/132", r.User.AvatarURL)
				_, err = s.UpdateProfile(ctx, r.User.ID, user.ProfileUpdate{Nickname: ptr("Mine")})
				require.NoError(t, err)
				in.Nickname = "WeChat's"
				r, err = s.Login(ctx, in)
				require.NoError(t, err)
				require.Equal(t, "Mine", r.User.Nickname, "a profile the user set is kept")
			})

			t.Run("late unionid merges the younger user into the older", func(t *testing.T) {
				createOrders(t, client)
				ms := newStore(user.WithMergeHooks(moveOrders), user.WithListeners(ev.listen))
				older, err := ms.Login(ctx, mini("wxA", "o-late-a", "u-late"))
				require.NoError(t, err)
				_, err = ms.UpdateProfile(ctx, older.User.ID, user.ProfileUpdate{Nickname: ptr("Older")})
				require.NoError(t, err)
				younger, err := ms.Login(ctx, mini("wxB", "o-late-b", "")) // bound to the Open Platform later
				require.NoError(t, err)
				require.NotEqual(t, older.User.ID, younger.User.ID)
				_, err = ms.UpdateProfile(ctx, younger.User.ID, user.ProfileUpdate{Nickname: ptr("Younger"), AvatarURL: ptr("https://example.com/y.png")})
				require.NoError(t, err)
				_, err = ms.SetPhone(ctx, younger.User.ID, user.Phone{PureNumber: "13800000000", CountryCode: "86"})
				require.NoError(t, err)
				_, err = client.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id, user_id) VALUES (1, %d)", ordersTable, younger.User.ID))
				require.NoError(t, err)

				r, err := ms.Login(ctx, mini("wxB", "o-late-b", "u-late"))
				require.NoError(t, err)
				require.Equal(t, older.User.ID, r.User.ID, "the login answers with the surviving user")
				require.Equal(t, &user.Merged{From: younger.User.ID, Into: older.User.ID}, r.Merged)
				require.Equal(t, []string{"wxA/o-late-a", "wxB/o-late-b"}, keys(r.User))
				require.Equal(t, "Older", r.User.Nickname, "the survivor's fields win")
				require.Equal(t, "https://example.com/y.png", r.User.AvatarURL, "empty fields are filled")
				require.Equal(t, "13800000000", *r.User.Phone)
				require.Equal(t, older.User.ID, orderOwner(t, client, 1), "the hook moved the business row in the same transaction")
				_, err = ms.Get(ctx, younger.User.ID)
				require.ErrorIs(t, err, user.ErrNotFound, "the absorbed user is gone")
				tomb, err := client.User.Get(ctx, younger.User.ID)
				require.NoError(t, err)
				require.Equal(t, entuser.StatusMerged, tomb.Status)
				require.Equal(t, older.User.ID, *tomb.MergedInto)
				require.Empty(t, tomb.Nickname)
				require.Nil(t, tomb.Phone, "the tombstone keeps no personal data")
				require.Contains(t, ev.merged(), user.Merged{From: younger.User.ID, Into: older.User.ID})
			})

			t.Run("a failing merge hook leaves everything as it was", func(t *testing.T) {
				boom := errors.New("orders service says no")
				ms := newStore(user.WithListeners(ev.listen), user.WithMergeHooks(
					func(ctx context.Context, tx *ent.Tx, from, into int) error { return moveOrders(ctx, tx, from, into) },
					func(context.Context, *ent.Tx, int, int) error { return boom },
				))
				a, err := ms.Login(ctx, mini("wxA", "o-fail-a", "u-fail"))
				require.NoError(t, err)
				b, err := ms.Login(ctx, mini("wxB", "o-fail-b", ""))
				require.NoError(t, err)
				_, err = client.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (id, user_id) VALUES (2, %d)", ordersTable, b.User.ID))
				require.NoError(t, err)
				before := len(ev.merged())

				_, err = ms.Login(ctx, mini("wxB", "o-fail-b", "u-fail"))
				require.ErrorIs(t, err, user.ErrMergeAborted)
				require.ErrorIs(t, err, boom)
				got, err := ms.Get(ctx, b.User.ID)
				require.NoError(t, err, "the younger user still exists")
				require.Equal(t, []string{"wxB/o-fail-b"}, keys(got))
				require.Nil(t, got.Edges.Identities[0].Unionid, "the unionid was not recorded either")
				require.Equal(t, b.User.ID, orderOwner(t, client, 2), "the first hook's move was rolled back")
				require.Len(t, ev.merged(), before, "listeners hear nothing of an aborted merge")
				a2, err := ms.Get(ctx, a.User.ID)
				require.NoError(t, err)
				require.Equal(t, []string{"wxA/o-fail-a"}, keys(a2))
			})

			t.Run("merge off records the unionid and keeps both users", func(t *testing.T) {
				core, logs := observer.New(zap.WarnLevel)
				off := newStore(user.WithMerge(false), user.WithLogger(zap.New(core)))
				a, err := off.Login(ctx, mini("wxA", "o-off-a", "u-off"))
				require.NoError(t, err)
				b, err := off.Login(ctx, mini("wxB", "o-off-b", ""))
				require.NoError(t, err)
				r, err := off.Login(ctx, mini("wxB", "o-off-b", "u-off"))
				require.NoError(t, err)
				require.Equal(t, b.User.ID, r.User.ID, "the conflicting identity keeps its user")
				require.Nil(t, r.Merged)
				require.Equal(t, "u-off", *r.Identity.Unionid)
				require.Equal(t, 1, logs.FilterMessageSnippet("merging is off").Len())
				again, err := off.Login(ctx, mini("wxB", "o-off-b", "u-off"))
				require.NoError(t, err)
				require.Equal(t, b.User.ID, again.User.ID)
				require.NotEqual(t, a.User.ID, again.User.ID)
			})

			t.Run("a unionid from decrypted user info merges too", func(t *testing.T) {
				a, err := s.Login(ctx, mini("wxA", "o-info-a", "u-info"))
				require.NoError(t, err)
				b, err := s.Login(ctx, mini("wxB", "o-info-b", ""))
				require.NoError(t, err)
				r, err := s.LinkUnionID(ctx, b.User.ID, user.IdentityKey{Provider: "wechat", AppID: "wxB", OpenID: "o-info-b"}, "u-info")
				require.NoError(t, err)
				require.Equal(t, a.User.ID, r.User.ID)
				require.Equal(t, &user.Merged{From: b.User.ID, Into: a.User.ID}, r.Merged)
				_, err = s.LinkUnionID(ctx, a.User.ID, user.IdentityKey{Provider: "wechat", AppID: "wxA", OpenID: "nobody"}, "u-info")
				require.ErrorIs(t, err, user.ErrNotFound, "only the caller's own identity")
			})

			t.Run("the session key belongs to the identity", func(t *testing.T) {
				r, err := s.Login(ctx, mini("wxA", "o-sk", "u-sk"))
				require.NoError(t, err)
				_, err = s.Login(ctx, mini("wxB", "o-sk-b", "u-sk"))
				require.NoError(t, err)
				keyA := user.IdentityKey{Provider: "wechat", AppID: "wxA", OpenID: "o-sk"}
				id, err := s.Identity(ctx, r.User.ID, keyA)
				require.NoError(t, err)
				require.Equal(t, "key-o-sk", id.SessionKey)
				require.NoError(t, s.SetSessionKey(ctx, keyA, "reset-key"))
				id, err = s.Identity(ctx, r.User.ID, keyA)
				require.NoError(t, err)
				require.Equal(t, "reset-key", id.SessionKey)
				idB, err := s.Identity(ctx, r.User.ID, user.IdentityKey{Provider: "wechat", AppID: "wxB", OpenID: "o-sk-b"})
				require.NoError(t, err)
				require.Equal(t, "key-o-sk-b", idB.SessionKey, "each identity keeps its own")
				_, err = s.Identity(ctx, r.User.ID+1000, keyA)
				require.ErrorIs(t, err, user.ErrNotFound, "not another user's")
			})

			t.Run("session keys are encrypted at rest, bound to their identity", func(t *testing.T) {
				ring, err := seal.New(seal.Key{ID: "k1", Secret: make([]byte, seal.KeySize)})
				require.NoError(t, err)
				sealed := newStore(user.WithSessionKeyRing(ring))
				in := mini("wxA", "o-rest", "")
				in.SessionKey = "o0q0otL8aEzpcZL/FT9WsQ=="
				r, err := sealed.Login(ctx, in)
				require.NoError(t, err)
				require.Equal(t, in.SessionKey, r.Identity.SessionKey, "callers see the plaintext")
				row, err := client.Identity.Query().Where(entidentity.Openid("o-rest")).Only(ctx)
				require.NoError(t, err)
				require.True(t, seal.IsSealed(row.SessionKey))
				require.NotContains(t, row.SessionKey, "o0q0otL8", "the database holds no plaintext")

				key := user.IdentityKey{Provider: "wechat", AppID: "wxA", OpenID: "o-rest"}
				id, err := sealed.Identity(ctx, r.User.ID, key)
				require.NoError(t, err)
				require.Equal(t, in.SessionKey, id.SessionKey)

				// A sealed key copied to another identity's row does not open there.
				other, err := sealed.Login(ctx, mini("wxA", "o-rest-2", ""))
				require.NoError(t, err)
				_, err = client.Identity.Update().Where(entidentity.Openid("o-rest-2")).SetSessionKey(row.SessionKey).Save(ctx)
				require.NoError(t, err)
				id2, err := sealed.Identity(ctx, other.User.ID, user.IdentityKey{Provider: "wechat", AppID: "wxA", OpenID: "o-rest-2"})
				require.NoError(t, err)
				require.Empty(t, id2.SessionKey, "reads as none: log in again")

				// Rotation: a new first key seals, the old one still opens.
				rotated, err := seal.New(seal.Key{ID: "k2", Secret: []byte("0123456789abcdef0123456789abcdef")}, seal.Key{ID: "k1", Secret: make([]byte, seal.KeySize)})
				require.NoError(t, err)
				id, err = newStore(user.WithSessionKeyRing(rotated)).Identity(ctx, r.User.ID, key)
				require.NoError(t, err)
				require.Equal(t, in.SessionKey, id.SessionKey)
				// A key kept in clear by an older version still reads.
				_, err = client.Identity.Update().Where(entidentity.Openid("o-rest")).SetSessionKey("legacy-plain-key").Save(ctx)
				require.NoError(t, err)
				id, err = sealed.Identity(ctx, r.User.ID, key)
				require.NoError(t, err)
				require.Equal(t, "legacy-plain-key", id.SessionKey)
			})

			t.Run("profile update validates before writing", func(t *testing.T) {
				r, err := s.Login(ctx, mini("wxA", "o-3", ""))
				require.NoError(t, err)
				got, err := s.UpdateProfile(ctx, r.User.ID, user.ProfileUpdate{Nickname: ptr("  小明 "), AvatarURL: ptr("https://example.com/a.png")})
				require.NoError(t, err)
				require.Equal(t, "小明", got.Nickname)
				require.Equal(t, "https://example.com/a.png", got.AvatarURL)
				require.Len(t, got.Edges.Identities, 1, "answers carry the identities")

				_, err = s.UpdateProfile(ctx, r.User.ID, user.ProfileUpdate{Nickname: ptr("ok"), AvatarURL: ptr("javascript:alert(1)")})
				var ve *user.ValidationError
				require.ErrorAs(t, err, &ve)
				require.Equal(t, "avatar_url", ve.Field)
				again, err := s.Get(ctx, r.User.ID)
				require.NoError(t, err)
				require.Equal(t, "小明", again.Nickname, "nothing half-written")
			})

			t.Run("phone stored", func(t *testing.T) {
				r, err := s.Login(ctx, mini("wxA", "o-4", ""))
				require.NoError(t, err)
				got, err := s.SetPhone(ctx, r.User.ID, user.Phone{Number: "+86 13800000000", PureNumber: "13800000000", CountryCode: "86"})
				require.NoError(t, err)
				require.Equal(t, "13800000000", *got.Phone)
				require.Equal(t, "86", *got.PhoneCountryCode)
			})

			t.Run("unknown user", func(t *testing.T) {
				_, err := s.Get(ctx, 987654)
				require.ErrorIs(t, err, user.ErrNotFound)
				_, err = s.UpdateProfile(ctx, 987654, user.ProfileUpdate{Nickname: ptr("x")})
				require.ErrorIs(t, err, user.ErrNotFound)
				require.ErrorIs(t, s.SetSessionKey(ctx, user.IdentityKey{Provider: "wechat", AppID: "wxA", OpenID: "nobody"}, "k"), user.ErrNotFound)
			})

			t.Run("listeners hear registrations and logins", func(t *testing.T) {
				seen := &events{}
				ls := newStore(user.WithListeners(seen.listen, func(context.Context, user.Event) { panic("a broken listener") }))
				r, err := ls.Login(ctx, mini("wxA", "o-ev", ""))
				require.NoError(t, err, "a panicking listener cannot break a login")
				_, err = ls.Login(ctx, mini("wxA", "o-ev", ""))
				require.NoError(t, err)
				key := user.IdentityKey{Provider: "wechat", AppID: "wxA", OpenID: "o-ev"}
				require.Equal(t, []user.Event{
					user.Registered{UserID: r.User.ID, Identity: key},
					user.LoggedIn{UserID: r.User.ID, Identity: key},
					user.LoggedIn{UserID: r.User.ID, Identity: key},
				}, seen.all)
			})

			t.Run("the public view never carries a session_key", func(t *testing.T) {
				in := mini("wxA", "o-5", "")
				in.SessionKey = "SECRET-session-key"
				r, err := s.Login(ctx, in)
				require.NoError(t, err)
				v := user.View(r.User, user.KeyOf(r.Identity))
				require.Equal(t, "o-5", v.OpenID)
				require.Len(t, v.Identities, 1)
				require.NotNil(t, v.LastLoginAt)
				for _, x := range []any{v, r.User, r.Identity} {
					b, err := json.Marshal(x)
					require.NoError(t, err)
					require.NotContains(t, string(b), "SECRET-session-key")
				}
				require.NotContains(t, r.Identity.String(), "SECRET-session-key")
				require.NotContains(t, fmt.Sprintf("%+v", r.User), "SECRET-session-key")
			})

			t.Run("a device not logged in is an anonymous user, and stays the user once it logs in", func(t *testing.T) {
				anon := user.LoginInput{Provider: "douyin", Kind: "miniprogram", AppID: "tt1", AnonymousOpenID: "device-1"}
				a, err := s.Login(ctx, anon)
				require.NoError(t, err)
				require.True(t, a.Created)
				require.Equal(t, "anonymous", a.Identity.Kind)
				require.Equal(t, []string{"tt1/anonymous:device-1"}, keys(a.User))
				again, err := s.Login(ctx, anon)
				require.NoError(t, err)
				require.Equal(t, a.User.ID, again.User.ID)

				real := user.LoginInput{Provider: "douyin", Kind: "miniprogram", AppID: "tt1", OpenID: "o-real-1", AnonymousOpenID: "device-1", SessionKey: "k"}
				r, err := s.Login(ctx, real)
				require.NoError(t, err)
				require.Equal(t, a.User.ID, r.User.ID, "a new real identity joins the anonymous user: nothing lost")
				require.Nil(t, r.Merged)
				require.Equal(t, "o-real-1", r.Identity.Openid)
				require.ElementsMatch(t, []string{"tt1/anonymous:device-1", "tt1/o-real-1"}, keys(r.User))
				back, err := s.Login(ctx, anon)
				require.NoError(t, err)
				require.Equal(t, a.User.ID, back.User.ID, "the device alone still finds the person")
			})

			t.Run("a real identity that has a user absorbs the device's anonymous user", func(t *testing.T) {
				known, err := s.Login(ctx, user.LoginInput{Provider: "douyin", Kind: "miniprogram", AppID: "tt1", OpenID: "o-known", SessionKey: "k"})
				require.NoError(t, err)
				anon, err := s.Login(ctx, user.LoginInput{Provider: "douyin", AppID: "tt1", AnonymousOpenID: "device-2"})
				require.NoError(t, err)
				_, err = s.UpdateProfile(ctx, anon.User.ID, user.ProfileUpdate{Nickname: ptr("AnonNick")})
				require.NoError(t, err)
				r, err := s.Login(ctx, user.LoginInput{Provider: "douyin", Kind: "miniprogram", AppID: "tt1", OpenID: "o-known", AnonymousOpenID: "device-2", SessionKey: "k2"})
				require.NoError(t, err)
				require.Equal(t, known.User.ID, r.User.ID, "the real user survives, whatever the ages")
				require.Equal(t, &user.Merged{From: anon.User.ID, Into: known.User.ID}, r.Merged)
				require.Equal(t, "AnonNick", r.User.Nickname)
				_, err = s.Get(ctx, anon.User.ID)
				require.ErrorIs(t, err, user.ErrNotFound)

				// The same device, now another person: never absorbed, they are two people.
				other, err := s.Login(ctx, user.LoginInput{Provider: "douyin", Kind: "miniprogram", AppID: "tt1", OpenID: "o-other", AnonymousOpenID: "device-2", SessionKey: "k"})
				require.NoError(t, err)
				require.NotEqual(t, known.User.ID, other.User.ID)
				require.Nil(t, other.Merged)
			})

			t.Run("bind attaches an identity of another platform, never someone else's", func(t *testing.T) {
				w, err := s.Login(ctx, mini("wxA", "o-bind-w", "u-bind-w"))
				require.NoError(t, err)
				qq := user.LoginInput{Provider: "qq", Kind: "miniprogram", AppID: "1101", OpenID: "o-bind-q", UnionID: "u-bind-q", SessionKey: "kq"}
				r, err := s.Bind(ctx, w.User.ID, qq)
				require.NoError(t, err)
				require.Equal(t, w.User.ID, r.User.ID)
				require.Equal(t, []string{"wxA/o-bind-w", "1101/o-bind-q"}, keys(r.User))
				_, err = s.Bind(ctx, w.User.ID, qq)
				require.NoError(t, err, "binding one's own identity again changes nothing")
				l, err := s.Login(ctx, qq)
				require.NoError(t, err)
				require.Equal(t, w.User.ID, l.User.ID, "logging in through the bound identity is the same user")

				other, err := s.Login(ctx, user.LoginInput{Provider: "qq", Kind: "miniprogram", AppID: "1101", OpenID: "o-other-q", UnionID: "u-other-q", SessionKey: "k"})
				require.NoError(t, err)
				_, err = s.Bind(ctx, w.User.ID, user.LoginInput{Provider: "qq", Kind: "miniprogram", AppID: "1101", OpenID: "o-other-q"})
				require.ErrorIs(t, err, user.ErrIdentityTaken)
				_, err = s.Bind(ctx, w.User.ID, user.LoginInput{Provider: "qq", Kind: "miniprogram", AppID: "1102", OpenID: "o-new", UnionID: "u-other-q"})
				require.ErrorIs(t, err, user.ErrIdentityTaken, "the person's account on that platform belongs to another user")
				got, err := s.Get(ctx, other.User.ID)
				require.NoError(t, err)
				require.Len(t, got.Edges.Identities, 1, "nothing moved")

				gone, err := s.Unbind(ctx, w.User.ID, "qq", "1101")
				require.NoError(t, err)
				require.Equal(t, []user.IdentityKey{{Provider: "qq", AppID: "1101", OpenID: "o-bind-q"}}, gone)
				_, err = s.Unbind(ctx, w.User.ID, "qq", "1101")
				require.ErrorIs(t, err, user.ErrNotFound)
				_, err = s.Unbind(ctx, w.User.ID, "wechat", "wxA")
				require.ErrorIs(t, err, user.ErrLastIdentity)
				fresh, err := s.Login(ctx, qq)
				require.NoError(t, err)
				require.NotEqual(t, w.User.ID, fresh.User.ID, "detached: that account is a user of its own again")
			})

			t.Run("the view speaks through the identity used", func(t *testing.T) {
				_, err := s.Login(ctx, mini("wxA", "o-v-a", "u-v"))
				require.NoError(t, err)
				b, err := s.Login(ctx, oauth("wxH5", "o-v-h", "u-v"))
				require.NoError(t, err)
				v := user.View(b.User, user.KeyOf(b.Identity))
				require.Equal(t, "o-v-h", v.OpenID)
				require.Equal(t, "u-v", *v.UnionID)
				require.Len(t, v.Identities, 2)
			})
		})
	}
}

// TestConcurrentFirstLogins: 30 first logins at once make exactly one user,
// whether they come through one app or two apps with one unionid.
func TestConcurrentFirstLogins(t *testing.T) {
	for _, backend := range storeBackends {
		t.Run(backend, func(t *testing.T) {
			client, base := storeFor(t, backend)
			s := user.NewEntStore(client, base...)
			ctx := context.Background()
			cases := map[string]func(i int) user.LoginInput{
				"one app": func(int) user.LoginInput { return mini("wxA", "same-openid", "") },
				"two apps, one unionid": func(i int) user.LoginInput {
					if i%2 == 0 {
						return mini("wxA", "openid-in-A", "one-unionid")
					}
					return oauth("wxH5", "openid-in-H5", "one-unionid")
				},
			}
			for name, input := range cases {
				t.Run(name, func(t *testing.T) {
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
							in := input(i)
							in.SessionKey = fmt.Sprintf("k%d", i)
							r, err := s.Login(ctx, in)
							errs[i] = err
							if r != nil {
								ids[i] = r.User.ID
							}
						}()
					}
					close(start)
					wg.Wait()
					require.NoError(t, errors.Join(errs...))
					for _, id := range ids {
						require.Equal(t, ids[0], id, "every login answered with the one user")
					}
					count, err := client.Identity.Query().Where(entidentity.UserID(ids[0])).Count(ctx)
					require.NoError(t, err)
					want := 1
					if strings.Contains(name, "two") {
						want = 2
					}
					require.Equal(t, want, count)
					var openids []string
					for i := range 2 {
						openids = append(openids, input(i).OpenID)
					}
					users, err := client.User.Query().Where(entuser.HasIdentitiesWith(entidentity.OpenidIn(openids...))).Count(ctx)
					require.NoError(t, err)
					require.Equal(t, 1, users)
				})
			}
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
