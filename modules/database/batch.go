package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wxlogin/wxlogin/config"
)

// Batch sends several statements to MySQL/MariaDB in one round trip. On
// the login's hot path a round trip costs more than the statements it
// carries (system calls on both sides), so the user store and the token
// sessions each do their part of a login in one.
//
// It is a small pool of its own with the driver's multiStatements on, used
// only for the fixed SQL texts of those callers, never for ent's queries:
// arguments are escaped by the driver (interpolateParams, utf8mb4), and no
// text is ever built from input.
type Batch struct {
	db *sql.DB
}

// OpenBatch opens the batch pool for a MySQL configuration; for other
// drivers, or a DSN whose charset makes the driver's escaping unsafe, it
// returns nil (callers then take their generic path).
func OpenBatch(cfg config.Database) (*Batch, error) {
	if cfg.Driver != "mysql" || dsnParam(cfg.DSN, "interpolateParams") || !safeCharset(dsnValue(cfg.DSN, "charset")) {
		return nil, nil
	}
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("database: APP_DATABASE_DSN is not a valid MySQL DSN: %w", err)
	}
	mc.ParseTime, mc.Loc = true, time.UTC
	mc.InterpolateParams, mc.MultiStatements = true, true
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(50)
	db.SetMaxIdleConns(25)
	db.SetConnMaxLifetime(5 * time.Minute)
	return &Batch{db: db}, nil
}

// Close closes the pool.
func (b *Batch) Close() error { return b.db.Close() }

// Stats is the pool's statistics.
func (b *Batch) Stats() sql.DBStats { return b.db.Stats() }

// Run sends query (statements separated by ";") on one connection and
// hands scan the rows of its last result set (the others carry none). A
// statement that fails stops the batch: a transaction the batch opened is
// rolled back on that connection before it returns to the pool.
func (b *Batch) Run(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) (err error) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// The batch may have stopped inside its transaction.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, rerr := conn.ExecContext(rctx, "ROLLBACK"); rerr != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // do not reuse it
			}
			cancel()
		}
		_ = conn.Close()
	}()
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for {
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		if len(cols) > 0 {
			if err := scan(rows); err != nil {
				return err
			}
			for rows.Next() { // drain what scan left
			}
		} else {
			for rows.Next() {
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !rows.NextResultSet() {
			return rows.Err()
		}
	}
}
