package token

import (
	"context"

	"github.com/wxlogin/wxlogin/ent"
	"github.com/wxlogin/wxlogin/ent/session"
)

// SessionOwner is what an operator needs to end a session knowing only its
// id: the user it belongs to. Every strategy of this package (and [Cached]
// over one) implements it; a strategy of one's own may.
type SessionOwner interface {
	// SessionOwner returns the id of the user the session belongs to, or
	// ErrSessionNotFound.
	SessionOwner(ctx context.Context, sessionID string) (int, error)
}

var (
	_ SessionOwner = (*JWT)(nil)
	_ SessionOwner = (*DB)(nil)
	_ SessionOwner = (*Redis)(nil)
	_ SessionOwner = (*Cached)(nil)
)

// owner reads a session's user from the sessions table.
func (s *sessions) owner(ctx context.Context, sid string) (int, error) {
	if !isBase64URL(sid, sessionLen) {
		return 0, ErrSessionNotFound
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	row, err := s.client.Session.Query().Where(session.ID(sid)).Select(session.FieldUserID).Only(ctx)
	if ent.IsNotFound(err) {
		return 0, ErrSessionNotFound
	}
	if err != nil {
		return 0, unavailable("read session", err)
	}
	return row.UserID, nil
}

// SessionOwner reads the session's user from the database.
func (j *JWT) SessionOwner(ctx context.Context, sid string) (int, error) {
	return j.sessions.owner(ctx, sid)
}

// SessionOwner reads the session's user from the database.
func (d *DB) SessionOwner(ctx context.Context, sid string) (int, error) {
	return d.sessions.owner(ctx, sid)
}

// SessionOwner opens the user id the session id carries sealed; whether
// the session still lives is RevokeSession's to say.
func (r *Redis) SessionOwner(_ context.Context, sid string) (int, error) {
	uid, ok := redisSessionUser(r.opt, sid)
	if !ok {
		return 0, ErrSessionNotFound
	}
	return uid, nil
}

// SessionOwner asks the inner strategy; ErrSessionNotFound when it cannot tell.
func (c *Cached) SessionOwner(ctx context.Context, sid string) (int, error) {
	if o, ok := c.inner.(SessionOwner); ok {
		return o.SessionOwner(ctx, sid)
	}
	return 0, ErrSessionNotFound
}
