package database_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	backends := map[string]func(t *testing.T) config.Database{
		"sqlite-file": func(*testing.T) config.Database { return sqliteFile },
		"mariadb":     func(t *testing.T) config.Database { return testutil.MariaDBConfig(t) },
		"postgres":    func(t *testing.T) config.Database { return testutil.PostgresConfig(t) },
	}
	for name, cfgOf := range backends {
		t.Run(name, func(t *testing.T) {
			cfg := cfgOf(t)
			var client *ent.Client
			var checks struct {
				fx.In
				All []health.Check `group:"readiness"`
			}
			app := fxtest.New(t, fx.Supply(cfg, zap.NewNop()), database.Module, fx.Populate(&client, &checks))
			app.RequireStart()
			ctx := context.Background()
			u, err := client.User.Create().Save(ctx)
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
	require.ErrorContains(t, err, "APP_DATABASE_DSN")
	_, err = database.Open(config.Database{Driver: "postgres", DSN: "postgres://app:hunter2@db:notaport/app"})
	require.ErrorContains(t, err, "APP_DATABASE_DSN")
	require.NotContains(t, err.Error(), "hunter2", "the password stays out of the error")
	_, err = database.Open(config.Database{Driver: "oracle", DSN: "x"})
	require.ErrorContains(t, err, "unknown driver")
}

// TestPingBeforeMigration: a server database that answers but has no
// tables yet is reachable (migrating it is the migrate command's job), on
// every backend.
func TestPingBeforeMigration(t *testing.T) {
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			cfg := testutil.DatabaseConfig(t, backend)
			client, err := database.Open(cfg)
			require.NoError(t, err)
			defer client.Close()
			ctx := context.Background()
			_, err = client.User.Query().Count(ctx)
			require.Error(t, err, "no tables yet")
			require.NoError(t, database.Ping(ctx, client))
		})
	}
}

// TestPingFailsWhenPostgresUnreachable: a refused connection is an error,
// not mistaken for a missing table.
func TestPingFailsWhenPostgresUnreachable(t *testing.T) {
	client, err := database.Open(config.Database{Driver: "postgres", DSN: "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1"})
	require.NoError(t, err, "opening does not connect yet")
	defer client.Close()
	require.Error(t, database.Ping(context.Background(), client))
}

// TestTimesRoundTrip: every backend gives back the stored instant in UTC
// with microsecond precision, whatever the process's time zone.
func TestTimesRoundTrip(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		shanghai = time.FixedZone("CST", 8*3600)
	}
	at := time.Date(2031, 7, 1, 23, 59, 58, 123456000, shanghai)
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			client := testutil.Database(t, backend)
			in := at
			if backend == "sqlite" {
				// SQLite keeps the offset it is given; the stores write UTC.
				in = at.UTC()
			}
			u, err := client.User.Create().SetBannedUntil(in).Save(ctx)
			require.NoError(t, err)
			got, err := client.User.Get(ctx, u.ID)
			require.NoError(t, err)
			require.Equal(t, time.UTC, got.BannedUntil.Location())
			require.True(t, at.Equal(*got.BannedUntil), "stored %s, read %s", at, got.BannedUntil)
			require.Equal(t, time.UTC, got.CreatedAt.Location())
		})
	}
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

// TestStartRefusesAnOldSchema: without automatic migration, start fails with
// one clear error until `app migrate` has run; after it, start succeeds.
func TestStartRefusesAnOldSchema(t *testing.T) {
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			cfg := testutil.DatabaseConfig(t, backend)
			if backend == "sqlite" {
				cfg.DSN = "file:" + filepath.Join(t.TempDir(), "fresh.db")
			}
			cfg.AutoMigrate = false
			start := func() error {
				app := fx.New(fx.NopLogger, fx.Supply(cfg, zap.NewNop()), database.Module, fx.Invoke(func(*ent.Client) {}))
				err := app.Start(context.Background())
				_ = app.Stop(context.Background())
				return err
			}
			require.ErrorIs(t, start(), database.ErrSchemaBehind, "an empty database")
			require.ErrorContains(t, start(), "run `app migrate`")

			client, err := database.Open(cfg)
			require.NoError(t, err)
			defer client.Close()
			require.NoError(t, database.Migrate(context.Background(), client))
			require.NoError(t, start(), "the schema is current")
			_, err = client.ExecContext(context.Background(), "DROP TABLE union_links")
			require.NoError(t, err)
			require.ErrorIs(t, start(), database.ErrSchemaBehind, "a table missing")
		})
	}
}

// TestTwoProcessesShareASQLiteFile: two clients on one file (two instances
// in development) run transactions that read and then write, concurrently;
// each waits its turn instead of failing with SQLITE_BUSY.
func TestTwoProcessesShareASQLiteFile(t *testing.T) {
	cfg := config.Database{Driver: "sqlite", DSN: "file:" + filepath.Join(t.TempDir(), "shared.db")}
	ctx := context.Background()
	var clients [2]*ent.Client
	for i := range clients {
		client, err := database.Open(cfg)
		require.NoError(t, err)
		defer client.Close()
		clients[i] = client
	}
	require.NoError(t, database.Migrate(ctx, clients[0]))
	const each = 40
	errs := make(chan error, 2*each)
	var wg sync.WaitGroup
	for _, client := range clients {
		for range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- func() error {
					tx, err := client.Tx(ctx)
					if err != nil {
						return err
					}
					n, err := tx.User.Query().Count(ctx)
					if err != nil {
						_ = tx.Rollback()
						return err
					}
					if _, err := tx.User.Create().SetNickname(fmt.Sprint("after ", n)).Save(ctx); err != nil {
						_ = tx.Rollback()
						return err
					}
					return tx.Commit()
				}()
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n, err := clients[1].User.Query().Count(ctx)
	require.NoError(t, err)
	require.Equal(t, 2*each, n)
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	client, err := database.Open(config.Database{Driver: "sqlite", DSN: "file:" + fresh})
	require.NoError(t, err)
	require.NoError(t, database.Migrate(context.Background(), client))
	client.Close()
	for _, f := range []string{fresh, fresh + "-wal", fresh + "-shm"} {
		if info, err := os.Stat(f); err == nil {
			require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), f)
		}
	}
	old := filepath.Join(dir, "old.db")
	require.NoError(t, os.WriteFile(old, nil, 0o644))
	client, err = database.Open(config.Database{Driver: "sqlite", DSN: "file:" + old})
	require.NoError(t, err)
	client.Close()
	info, err := os.Stat(old)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "an existing file is tightened")
}
