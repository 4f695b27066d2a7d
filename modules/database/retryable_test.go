package database_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/modules/database"
)

func TestRetryable(t *testing.T) {
	for _, err := range []error{
		&mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"},
		fmt.Errorf("user: create: %w", &mysql.MySQLError{Number: 1205}),
		&pgconn.PgError{Code: "40P01"},
		&pgconn.PgError{Code: "40001"},
	} {
		require.True(t, database.Retryable(err), "%v", err)
	}
	for _, err := range []error{
		nil,
		errors.New("connection refused"),
		&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"},
		&pgconn.PgError{Code: "23505"},
	} {
		require.False(t, database.Retryable(err), "%v", err)
	}
}
