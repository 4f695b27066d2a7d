package database_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/database"
	"github.com/wxlogin/wxlogin/modules/health"
)

// TestModule boots the module on each backend: it migrates at start,
// answers its readiness check, and closes the client on stop.
func TestModule(t *testing.T) {
	sqliteFile := config.Database{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "sub", "app.db"), AutoMigrate: true}
	backends := map[string]config.Database{"sqlite-file": sqliteFile, "mariadb": testutil.MariaDBConfig(t)}
	for name, cfg := range backends {
		t.Run(name, func(t *testing.T) {
			var client *ent.Client
			var checks struct {
				fx.In
				All []health.Check `group:"readiness"`
			}
			app := fxtest.New(t, fx.Supply(cfg, zap.NewNop()), database.Module, fx.Populate(&client, &checks))
			app.RequireStart()
			ctx := context.Background()
			u, err := client.User.Create().SetAppid("wx").SetOpenid("o").Save(ctx)
			require.NoError(t, err, "the schema was migrated at start")
			require.NotZero(t, u.ID)
			require.Len(t, checks.All, 1)
			require.Equal(t, "database", checks.All[0].Name)
			require.NoError(t, checks.All[0].Run(ctx))
			app.RequireStop()
			_, err = client.User.Query().Count(ctx)
			require.Error(t, err, "closed on stop")
		})
	}
}

func TestStartFailsWhenUnreachable(t *testing.T) {
	cfg := config.Database{Driver: "mysql", DSN: "root@tcp(127.0.0.1:1)/nothing?timeout=1s"}
	app := fx.New(fx.NopLogger, fx.Supply(cfg, zap.NewNop()), database.Module, fx.Invoke(func(*ent.Client) {}))
	err := app.Start(context.Background())
	require.ErrorContains(t, err, "not reachable")
}

func TestOpenRefusesBadConfig(t *testing.T) {
	_, err := database.Open(config.Database{Driver: "mysql", DSN: "not a dsn"})
	require.ErrorContains(t, err, "APP_DATABASE_DSN")
	_, err = database.Open(config.Database{Driver: "postgres"})
	require.Error(t, err)
}

// TestForeignKeysOnSQLite: the pragma is on, so a session of a missing
// user is refused as it would be on MariaDB.
func TestForeignKeysOnSQLite(t *testing.T) {
	client := testutil.SQLite(t)
	_, err := client.Session.Create().SetID("s1").SetUserID(404).SetAppid("wx").SetOpenid("o").
		SetRefreshHash("h").SetRefreshExpiresAt(testNow()).Save(context.Background())
	require.Error(t, err)
}

func testNow() (t time.Time) { return time.Now() }
