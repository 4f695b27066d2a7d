package user

import (
	"context"
	"errors"
	"fmt"

	"github.com/wxlogin/wxlogin/ent"
)

// ErrUnavailable means the database did not answer (refused, cut, timed
// out, a transaction that could not begin or commit). It is no verdict on
// the user or the input: callers answer 503 and the client retries; nobody
// is logged out for it. Errors wrapping it also wrap the cause.
var ErrUnavailable = errors.New("user: database unavailable")

// StoreError is a database failure during Op: errors.Is finds both
// ErrUnavailable and the cause.
type StoreError struct {
	Op  string
	Err error
}

func (e *StoreError) Error() string   { return "user: " + e.Op + ": " + e.Err.Error() }
func (e *StoreError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// unavailable wraps a failure of the database during op as ErrUnavailable,
// unless it is a verdict: a constraint, a missing row, a validation of
// ent's or of a hook's, one of this package's own errors, or a request that
// was canceled by its caller. Those keep their meaning.
func unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *StoreError
	var ve *ValidationError
	var be *BannedError
	switch {
	case errors.As(err, &se):
		return err
	case errors.As(err, &ve), errors.As(err, &be), errors.Is(err, ErrBanned), errors.Is(err, ErrDeleteAborted), errors.Is(err, ErrNotFound), errors.Is(err, ErrIdentityTaken),
		errors.Is(err, ErrLastIdentity), errors.Is(err, ErrMergeAborted), errors.Is(err, errRaced),
		ent.IsConstraintError(err), ent.IsNotFound(err), ent.IsNotSingular(err), ent.IsValidationError(err),
		errors.Is(err, context.Canceled):
		return fmt.Errorf("user: %s: %w", op, err)
	}
	return &StoreError{Op: op, Err: err}
}
