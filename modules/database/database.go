// Package database opens the ent client on SQLite (pure Go, embedded
// default), MySQL/MariaDB or PostgreSQL (pgx through database/sql), migrates
// the schema and closes the client when the application stops.
//
// Module provides *ent.Client and the *sql.DB pool under it (whose
// statistics modules/metrics exports). An application that manages its own
// database replaces the client with fx.Replace(client) or fx.Decorate; the
// rest of the modules only need an *ent.Client. When the graph holds a
// trace.TracerProvider (modules/tracing), every statement is a span
// (XSAM/otelsql): the statement's text with its placeholders, never its
// arguments.
package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	"github.com/XSAM/otelsql"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/modules/health"
)

// Module provides the ent client, migrated at start when configured, and
// the "database" readiness check of GET /readyz.
var Module = fx.Module("database",
	fx.Provide(
		New,
		NewBatch,
		health.AsCheck(func(c *ent.Client) health.Check {
			return health.Check{Name: "database", Run: func(ctx context.Context) error { return Ping(ctx, c) }}
		}),
	),
)

// Params are New's dependencies.
type Params struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    config.Database
	Logger    *zap.Logger
	// Tracer makes every statement a span; optional.
	Tracer trace.TracerProvider `optional:"true"`
}

// Result is what New provides.
type Result struct {
	fx.Out
	Client *ent.Client
	// DB is the connection pool under Client (for its statistics).
	DB *sql.DB
}

// New opens the client; it migrates the schema on start when AutoMigrate
// is set and closes the client on stop.
func New(p Params) (Result, error) {
	db, name, err := OpenDB(p.Config, p.Tracer)
	if err != nil {
		return Result{}, err
	}
	client := ent.NewClient(ent.Driver(entsql.OpenDB(name, db)))
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := Ping(ctx, client); err != nil {
				return fmt.Errorf("database: %s is not reachable: %w", p.Config.Driver, err)
			}
			if p.Config.AutoMigrate {
				if err := Migrate(ctx, client); err != nil {
					return err
				}
				p.Logger.Info("database schema migrated", zap.String("driver", p.Config.Driver))
				return nil
			}
			return CheckSchema(ctx, client)
		},
		OnStop: func(context.Context) error { return client.Close() },
	})
	return Result{Client: client, DB: db}, nil
}

// NewBatch opens the batch pool for MySQL (nil for the other drivers) and
// closes it when the application stops.
func NewBatch(lc fx.Lifecycle, cfg config.Database) (*Batch, error) {
	b, err := OpenBatch(cfg)
	if err != nil || b == nil {
		return nil, err
	}
	lc.Append(fx.StopHook(b.Close))
	return b, nil
}

// Open opens an ent client for the configured driver without touching the
// database yet.
func Open(cfg config.Database) (*ent.Client, error) {
	db, name, err := OpenDB(cfg, nil)
	if err != nil {
		return nil, err
	}
	return ent.NewClient(ent.Driver(entsql.OpenDB(name, db))), nil
}

// OpenDB opens the connection pool for the configured driver without
// touching the database yet, and returns it with its ent dialect. With a
// recording tp, every statement is a span of tp.
func OpenDB(cfg config.Database, tp trace.TracerProvider) (*sql.DB, string, error) {
	var tracing []otelsql.Option
	if _, off := tp.(noop.TracerProvider); tp != nil && !off {
		tracing = []otelsql.Option{
			otelsql.WithTracerProvider(tp),
			otelsql.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelsql.WithAttributes(dbSystem(cfg.Driver)),
			otelsql.WithSpanOptions(otelsql.SpanOptions{
				DisableErrSkip: true, OmitConnResetSession: true, OmitRows: true, OmitConnectorConnect: true,
			}),
		}
	}
	return openSQL(cfg, tracing)
}

// dbSystem is the OpenTelemetry name of a driver's database.
func dbSystem(driver string) attribute.KeyValue {
	switch driver {
	case "mysql":
		return semconv.DBSystemNameMySQL
	case "postgres":
		return semconv.DBSystemNamePostgreSQL
	}
	return semconv.DBSystemNameSQLite
}

// openSQL opens the pool; tracing, when not empty, wraps its driver.
func openSQL(cfg config.Database, tracing []otelsql.Option) (*sql.DB, string, error) {
	open := func(c driver.Connector) *sql.DB {
		if tracing != nil {
			return otelsql.OpenDB(c, tracing...)
		}
		return sql.OpenDB(c)
	}
	switch cfg.Driver {
	case "sqlite":
		dsn, err := sqliteDSN(cfg.DSN)
		if err != nil {
			return nil, "", err
		}
		var db *sql.DB
		if tracing != nil {
			db, err = otelsql.Open("sqlite", dsn, tracing...)
		} else {
			db, err = sql.Open("sqlite", dsn)
		}
		if err != nil {
			return nil, "", fmt.Errorf("database: open sqlite: %w", err)
		}
		// SQLite has one writer; one connection turns lock contention into
		// queueing instead of SQLITE_BUSY errors under concurrent logins.
		db.SetMaxOpenConns(1)
		return db, dialect.SQLite, nil
	case "mysql":
		mc, err := mysql.ParseDSN(cfg.DSN)
		if err != nil {
			return nil, "", fmt.Errorf("database: APP_DATABASE_DSN is not a valid MySQL DSN: %w", err)
		}
		// ent scans DATETIME into time.Time and all instants are UTC.
		mc.ParseTime = true
		mc.Loc = time.UTC
		// Arguments are written into each statement by the driver instead of
		// a prepare, execute and close per statement: one round trip instead
		// of three. It is safe with the connection's utf8mb4 (the driver
		// escapes for it and refuses unsafe collations); a DSN that picks
		// another charset, or says interpolateParams=false, keeps prepared
		// statements.
		if !dsnParam(cfg.DSN, "interpolateParams") && safeCharset(dsnValue(cfg.DSN, "charset")) {
			mc.InterpolateParams = true
		}
		connector, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, "", fmt.Errorf("database: %w", err)
		}
		db := open(connector)
		db.SetMaxOpenConns(50)
		db.SetMaxIdleConns(25)
		db.SetConnMaxLifetime(5 * time.Minute)
		return db, dialect.MySQL, nil
	case "postgres":
		db, err := openPostgres(cfg.DSN, open)
		if err != nil {
			return nil, "", err
		}
		return db, dialect.Postgres, nil
	default:
		return nil, "", fmt.Errorf("database: unknown driver %q", cfg.Driver)
	}
}

// openPostgres opens a pgx pool through database/sql. Any DSN pgx accepts
// works, a URL or libpq key=value pairs, with their options
// (sslmode, connect_timeout, default_query_exec_mode=simple_protocol behind
// PgBouncer in transaction mode, …).
func openPostgres(dsn string, open func(driver.Connector) *sql.DB) (*sql.DB, error) {
	if dsn == "" {
		// pgx would fall back to PG* variables and a Unix socket: refuse
		// rather than connect somewhere nobody configured.
		return nil, errors.New("database: APP_DATABASE_DSN is required for postgres")
	}
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the DSN with the password only best-effort
		// redacted: say what is wrong without it.
		return nil, errors.New("database: APP_DATABASE_DSN is not a valid PostgreSQL DSN " +
			"(want e.g. postgres://user@host:5432/app?sslmode=disable or host=… user=… dbname=…)")
	}
	db := open(stdlib.GetConnector(*pc, stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
		// timestamptz (ent's time columns here) keeps microseconds; scan it
		// in UTC as the other drivers do, whatever the process's TZ.
		c.TypeMap().RegisterType(&pgtype.Type{
			Name: "timestamptz", OID: pgtype.TimestamptzOID,
			Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
		})
		return nil
	})))
	// Each PostgreSQL connection is a server process (max_connections is 100
	// by default): a smaller pool than MySQL's, shared by a few instances.
	db.SetMaxOpenConns(25)
	db.SetMaxIdleConns(10)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetConnMaxIdleTime(time.Minute)
	return db, nil
}

// sqliteDSN adds the pragmas the project relies on (foreign keys, a busy
// timeout, WAL for files), makes transactions take the write lock when they
// begin, and creates the file's directory.
//
// BEGIN IMMEDIATE matters when two processes share the file (two instances
// in development): a deferred transaction that read and then writes after
// the other process wrote gets SQLITE_BUSY at once — the busy timeout cannot
// help it — where an immediate one waits its turn at BEGIN. Each process
// holds one connection, so nothing of its own waits behind it.
func sqliteDSN(dsn string) (string, error) {
	path := strings.TrimPrefix(dsn, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	memory := path == ":memory:" || strings.Contains(dsn, "mode=memory")
	if !memory && path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("database: create the directory of %s: %w", path, err)
		}
		if err := privateFile(path); err != nil {
			return "", err
		}
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	if !strings.Contains(dsn, "foreign_keys") {
		dsn += sep + "_pragma=foreign_keys(1)"
		sep = "&"
	}
	if !strings.Contains(dsn, "busy_timeout") {
		dsn += sep + "_pragma=busy_timeout(10000)"
	}
	if !memory && !strings.Contains(dsn, "journal_mode") {
		dsn += "&_pragma=journal_mode(WAL)"
	}
	if !strings.Contains(dsn, "_txlock") {
		dsn += "&_txlock=immediate"
	}
	return dsn, nil
}

// dsnValue returns the value of a MySQL DSN parameter, "" when absent.
func dsnValue(dsn, name string) string {
	_, query, _ := strings.Cut(dsn, "?")
	for _, kv := range strings.Split(query, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// dsnParam reports whether a MySQL DSN sets the parameter.
func dsnParam(dsn, name string) bool {
	_, query, _ := strings.Cut(dsn, "?")
	for _, kv := range strings.Split(query, "&") {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			return true
		}
	}
	return false
}

// safeCharset reports whether the driver's escaping is safe for the DSN's
// charset list ("" means the driver's utf8mb4).
func safeCharset(charsets string) bool {
	if charsets == "" {
		return true
	}
	for _, c := range strings.Split(charsets, ",") {
		switch strings.ToLower(c) {
		case "utf8mb4", "utf8", "utf8mb3", "latin1", "ascii", "binary":
		default:
			return false
		}
	}
	return true
}

// privateFile makes the SQLite file readable by its owner only (it holds
// users' data and sealed session keys): created 0600, or tightened to it.
// SQLite gives its -wal and -shm files the database file's mode.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("database: open %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("database: make %s private: %w", path, err)
		}
	}
	return nil
}

// migrateMu serialises migrations: ent's migrator rewrites the shared
// table descriptors of the generated code, so two at once in one process
// (several apps, parallel tests) would race.
var migrateMu sync.Mutex

// Migrate creates or updates the schema. A database written by the
// single-app schema (users keyed by appid and openid) is carried forward:
// every old user becomes a user with one WeChat mini-program identity, and
// the old columns go. An interrupted run resumes where it stopped; running
// it again changes nothing.
func Migrate(ctx context.Context, client *ent.Client) error {
	migrateMu.Lock()
	defer migrateMu.Unlock()
	legacy, err := hasColumn(ctx, client, "users", "openid")
	if err != nil {
		return fmt.Errorf("database: migrate: %w", err)
	}
	if legacy {
		// The schema change below drops the old columns (on SQLite ent
		// rebuilds the table without them whatever the options), so what
		// they hold is staged first.
		for _, stmt := range []string{"DROP TABLE IF EXISTS " + stagingTable, stageSingleAppUsers} {
			if _, err := client.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("database: migrate: stage the single-app users: %w", err)
			}
		}
	}
	if err := client.Schema.Create(ctx, schema.WithDropColumn(legacy), schema.WithDropIndex(legacy)); err != nil {
		return fmt.Errorf("database: migrate: %w", err)
	}
	staged, err := hasColumn(ctx, client, stagingTable, "openid")
	if err != nil {
		return fmt.Errorf("database: migrate: %w", err)
	}
	if !staged {
		return nil
	}
	if err := copySingleAppUsers(ctx, client); err != nil {
		return fmt.Errorf("database: migrate single-app users to identities: %w", err)
	}
	return nil
}

// ErrSchemaBehind means the database lacks tables or columns this version
// needs: `app migrate` has not run since the upgrade.
var ErrSchemaBehind = errors.New("database: the schema is missing or older than this version: " +
	"run `app migrate` (go run ./app migrate) before starting, or set APP_DATABASE_AUTOMIGRATE=true")

// CheckSchema returns ErrSchemaBehind unless the schema is the one this
// version migrates to (it changes nothing).
func CheckSchema(ctx context.Context, client *ent.Client) error {
	migrateMu.Lock()
	defer migrateMu.Unlock()
	legacy, err := hasColumn(ctx, client, "users", "openid")
	if err != nil {
		return fmt.Errorf("database: check the schema: %w", err)
	}
	var plan strings.Builder
	if err := client.Schema.WriteTo(ctx, &plan); err != nil {
		return fmt.Errorf("database: check the schema: %w", err)
	}
	if legacy || strings.TrimSpace(plan.String()) != "" {
		return ErrSchemaBehind
	}
	return nil
}

// hasColumn reports whether table exists and has column.
func hasColumn(ctx context.Context, client *ent.Client, table, column string) (bool, error) {
	rows, err := client.QueryContext(ctx, "SELECT "+column+" FROM "+table+" WHERE 1 = 0")
	if err != nil {
		if isMissingTable(err) || isMissingColumn(err) {
			return false, nil
		}
		return false, err
	}
	return true, rows.Close()
}

// stagingTable holds the single-app users' identity columns while the
// schema changes; it is dropped once they are copied.
const stagingTable = "wxlogin_single_app_users"

const stageSingleAppUsers = `CREATE TABLE ` + stagingTable + ` AS
	SELECT id, created_at, updated_at, appid, openid, unionid, session_key, last_login_at FROM users`

// singleAppCopy moves the staged columns into identities and unionid
// links; each statement skips what an interrupted earlier run copied.
// When several old users share a unionid (a deployment that changed its
// AppID over time), the oldest owns it and the others keep theirs
// unrecorded: their next login, which brings the unionid again, merges them
// the usual way (merge hooks included).
var singleAppCopy = []string{
	`INSERT INTO identities (created_at, updated_at, provider, kind, appid, openid, unionid, session_key, last_login_at, user_id)
	 SELECT u.created_at, u.updated_at, 'wechat', 'miniprogram', u.appid, u.openid,
	        CASE WHEN u.unionid IS NULL OR u.unionid = '' OR EXISTS (
	               SELECT 1 FROM ` + stagingTable + ` o WHERE o.unionid = u.unionid AND o.id < u.id) THEN NULL ELSE u.unionid END,
	        u.session_key, u.last_login_at, u.id
	 FROM ` + stagingTable + ` u
	 WHERE EXISTS (SELECT 1 FROM users x WHERE x.id = u.id)
	   AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.provider = 'wechat' AND i.appid = u.appid AND i.openid = u.openid)`,
	`INSERT INTO union_links (provider, unionid, user_id, created_at)
	 SELECT 'wechat', u.unionid, u.id, u.created_at
	 FROM ` + stagingTable + ` u
	 WHERE u.unionid IS NOT NULL AND u.unionid <> ''
	   AND EXISTS (SELECT 1 FROM users x WHERE x.id = u.id)
	   AND NOT EXISTS (SELECT 1 FROM ` + stagingTable + ` o WHERE o.unionid = u.unionid AND o.id < u.id)
	   AND NOT EXISTS (SELECT 1 FROM union_links l WHERE l.provider = 'wechat' AND l.unionid = u.unionid)`,
}

func copySingleAppUsers(ctx context.Context, client *ent.Client) error {
	tx, err := client.Tx(ctx)
	if err != nil {
		return err
	}
	for _, stmt := range singleAppCopy {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// DDL commits on its own on MySQL: only after the copy is safe.
	_, err = client.ExecContext(ctx, "DROP TABLE "+stagingTable)
	return err
}

// Ping checks the database answers.
func Ping(ctx context.Context, client *ent.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := client.User.Query().Limit(1).IDs(ctx)
	if err != nil && isMissingTable(err) {
		// Reachable but not migrated yet: that is the migrate command's job.
		return nil
	}
	return err
}

// isMissingTable recognises "table not found" on every driver: SQLite's
// message, MySQL's 1146 and PostgreSQL's 42P01 (undefined_table).
func isMissingTable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "42P01"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1146
	}
	s := err.Error()
	return strings.Contains(s, "no such table") || strings.Contains(s, "doesn't exist")
}

// isMissingColumn recognises "column not found": SQLite's message, MySQL's
// 1054 and PostgreSQL's 42703 (undefined_column).
func isMissingColumn(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "42703"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1054
	}
	return strings.Contains(err.Error(), "no such column")
}

// Retryable reports whether err is the database giving up a transaction
// because of another one — a deadlock or a lock wait that timed out
// (MySQL/MariaDB 1213, 1205; PostgreSQL 40001, 40P01) — so that running it
// again from the start is the answer, not a 503.
func Retryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}
