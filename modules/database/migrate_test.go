package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	entidentity "github.com/wxlogin/wxlogin/ent/identity"
	entsession "github.com/wxlogin/wxlogin/ent/session"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/user"
)

// singleAppDatabase writes, with the single-app schema's own DDL (as its
// migration created it, see testdata), the rows a deployment of that
// version holds, and returns a client on it that has not migrated yet.
func singleAppDatabase(t *testing.T, cfg config.Database, ddl string) *ent.Client {
	t.Helper()
	client, err := database.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join("testdata", ddl))
	require.NoError(t, err)
	for _, stmt := range strings.Split(string(raw), ";\n") {
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			_, err := client.ExecContext(ctx, stmt)
			require.NoError(t, err, stmt)
		}
	}
	for _, stmt := range []string{
		// 1: a returning user with a unionid, a profile, a phone and a session.
		`INSERT INTO users (id, created_at, updated_at, appid, openid, unionid, session_key, nickname, avatar_url, phone, phone_country_code, last_login_at)
		 VALUES (1, '2025-01-02 03:04:05', '2025-01-03 03:04:05', 'wxOld', 'o-one', 'u-one', 'key-one', '小明', 'https://example.com/a.png', '13800000000', '86', '2025-01-03 03:04:05')`,
		// 2: no unionid.
		`INSERT INTO users (id, created_at, updated_at, appid, openid, session_key) VALUES (2, '2025-02-01 00:00:00', '2025-02-01 00:00:00', 'wxOld', 'o-two', 'key-two')`,
		// 3: the same person as 1 under an AppID the deployment used before.
		`INSERT INTO users (id, created_at, updated_at, appid, openid, unionid, session_key) VALUES (3, '2025-03-01 00:00:00', '2025-03-01 00:00:00', 'wxOlder', 'o-three', 'u-one', 'key-three')`,
		`INSERT INTO sessions (id, created_at, updated_at, appid, openid, refresh_hash, refresh_expires_at, generation, user_id)
		 VALUES ('sess-one', '2025-01-03 03:04:05', '2025-01-03 03:04:05', 'wxOld', 'o-one', 'hash', '2099-01-01 00:00:00', 0, 1)`,
	} {
		_, err := client.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	return client
}

func TestMigrateFromTheSingleAppSchema(t *testing.T) {
	backends := map[string]func(t *testing.T) *ent.Client{
		"sqlite": func(t *testing.T) *ent.Client {
			return singleAppDatabase(t, config.Database{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "v1.db")}, "schema-v1.sqlite.sql")
		},
		"mariadb": func(t *testing.T) *ent.Client {
			return singleAppDatabase(t, testutil.MariaDBConfig(t), "schema-v1.mysql.sql")
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			client := open(t)
			ctx := context.Background()
			require.NoError(t, database.Migrate(ctx, client))

			ids, err := client.Identity.Query().Order(ent.Asc(entidentity.FieldUserID)).All(ctx)
			require.NoError(t, err)
			require.Len(t, ids, 3, "each old user became a user with one identity")
			one := ids[0]
			require.Equal(t, []any{1, "wechat", "miniprogram", "wxOld", "o-one", "key-one"},
				[]any{one.UserID, one.Provider, one.Kind, one.Appid, one.Openid, one.SessionKey})
			require.Equal(t, "u-one", *one.Unionid)
			require.Equal(t, time.Date(2025, 1, 3, 3, 4, 5, 0, time.UTC), one.LastLoginAt.UTC())
			require.Nil(t, ids[1].Unionid)
			require.Nil(t, ids[2].Unionid, "a younger user sharing a unionid learns it again at its next login")

			u, err := client.User.Get(ctx, 1)
			require.NoError(t, err)
			require.Equal(t, "小明", u.Nickname)
			require.Equal(t, "13800000000", *u.Phone)
			require.Equal(t, "active", u.Status.String())

			s, err := client.Session.Query().Where(entsession.ID("sess-one")).Only(ctx)
			require.NoError(t, err)
			require.Equal(t, "wechat", s.Provider, "sessions name their provider")
			require.Equal(t, 1, s.UserID)

			_, err = client.QueryContext(ctx, "SELECT openid FROM users")
			require.Error(t, err, "the single-app columns are gone")

			// The old users log in as themselves; the younger twin merges.
			store := user.NewEntStore(client)
			r, err := store.Login(ctx, user.LoginInput{Provider: "wechat", Kind: "miniprogram", AppID: "wxOld", OpenID: "o-one", UnionID: "u-one", SessionKey: "new"})
			require.NoError(t, err)
			require.Equal(t, 1, r.User.ID)
			r, err = store.Login(ctx, user.LoginInput{Provider: "wechat", Kind: "miniprogram", AppID: "wxOlder", OpenID: "o-three", UnionID: "u-one", SessionKey: "new"})
			require.NoError(t, err)
			require.Equal(t, 1, r.User.ID)
			require.Equal(t, &user.Merged{From: 3, Into: 1}, r.Merged)
			r, err = store.Login(ctx, user.LoginInput{Provider: "wechat", Kind: "miniprogram", AppID: "wxNew", OpenID: "o-new", SessionKey: "k"})
			require.NoError(t, err)
			require.Greater(t, r.User.ID, 3, "new users get new ids")

			require.NoError(t, database.Migrate(ctx, client), "migrating again is harmless")
			n, err := client.Identity.Query().Count(ctx)
			require.NoError(t, err)
			require.Equal(t, 4, n)
		})
	}
}

// TestMigrateResumes: a migration that died after the schema change, with
// the single-app users staged but not yet copied, finishes on the next run.
func TestMigrateResumes(t *testing.T) {
	client := singleAppDatabase(t, config.Database{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "v1.db")}, "schema-v1.sqlite.sql")
	ctx := context.Background()
	_, err := client.ExecContext(ctx, `CREATE TABLE wxlogin_single_app_users AS
		SELECT id, created_at, updated_at, appid, openid, unionid, session_key, last_login_at FROM users`)
	require.NoError(t, err)
	require.NoError(t, client.Schema.Create(ctx), "the process died here")
	_, err = client.QueryContext(ctx, "SELECT openid FROM users")
	require.Error(t, err, "the columns are gone, the staged copy is all that is left")

	require.NoError(t, database.Migrate(ctx, client))
	n, err := client.Identity.Query().Count(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	_, err = client.QueryContext(ctx, "SELECT id FROM wxlogin_single_app_users")
	require.Error(t, err, "the staging table is dropped once copied")
}
