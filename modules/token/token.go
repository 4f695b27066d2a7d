// Package token issues, verifies, refreshes and revokes login tokens.
//
// A [Strategy] turns a logged-in [Subject] into a token [Pair] (a short-lived
// access token and a refresh token) and an access token back into a
// [Principal]. Three strategies exist, chosen by config.Token.Strategy
// (APP_TOKEN_STRATEGY):
//
//   - "jwt" ([JWT]): signed JWTs (HS256 or EdDSA, keys rotated by kid), a
//     deny list of revoked sessions in Redis when configured, else in the
//     database; sessions and refresh tokens in the database.
//   - "db" ([DB]): opaque access tokens stored as SHA-256 hashes in the
//     database.
//   - "redis" ([Redis]): opaque tokens stored as SHA-256 hashes in Redis, with
//     a per-user index so that logging out everywhere is one call.
//
// Every login is a session (a refresh-token family). Refresh rotates the
// refresh token; presenting a spent one again revokes the whole family
// ([ErrRefreshReused]).
//
// Verification is the hot path of every request, so [Cached] puts a bounded
// in-memory cache of verified tokens in front of any strategy. Revocations
// reach the caches of every instance through a [Feed]: Redis pub/sub when
// Redis is configured, else a poll of the database's revocation table. The
// instance that revokes drops the entries at once; the others within a
// second. A [Cleaner] deletes expired rows in the background.
//
// # Replacing parts with fx
//
// [Module] provides [Strategy], [Feed], *[KeySet] and *[Cleaner]. An
// application may:
//   - replace the strategy with its own: fx.Decorate(func(token.Strategy) token.Strategy { return mine }),
//     or wrap it (metrics, audit) the same way;
//   - replace the feed, e.g. fx.Decorate(func(token.Feed) token.Feed { ... }), as long as the
//     replacement carries revocations to every instance;
//   - leave the module out and build strategies with [NewJWT], [NewDB],
//     [NewRedis] and [NewCached] directly.
//
// # Errors
//
// Verify fails with [ErrUnauthenticated], Refresh with [ErrInvalidRefresh] or
// [ErrRefreshReused]. Any other error is an infrastructure failure (the
// database or Redis did not answer): it is not a verdict on the token and
// must not log the user out.
package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap/zapcore"
)

// Strategy names.
const (
	NameJWT   = "jwt"
	NameDB    = "db"
	NameRedis = "redis"
)

// Subject is who a new login is for: the user and the identity (one
// account on one app) they logged in with.
type Subject struct {
	UserID int
	// Provider is the identity's platform ("wechat", …); empty means "wechat".
	Provider string
	AppID    string
	OpenID   string
}

// Principal is what a verified access token says: the user and the
// identity they logged in with.
type Principal struct {
	UserID int
	// Provider is the identity's platform ("wechat", …).
	Provider string
	AppID    string
	OpenID   string
	// SessionID names the login (refresh family) the token belongs to.
	SessionID string
	// TokenID identifies this access token (the JWT "jti", or a prefix of
	// the opaque token's hash); it is not a secret.
	TokenID string
	// ExpiresAt is when the access token stops being valid.
	ExpiresAt time.Time
}

// Pair is what a login or a refresh hands to the client.
type Pair struct {
	AccessToken      string
	ExpiresAt        time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	SessionID        string
}

// String hides the tokens.
func (p Pair) String() string {
	return fmt.Sprintf("token.Pair{session %s, access expires %s, refresh expires %s}",
		p.SessionID, p.ExpiresAt.UTC().Format(time.RFC3339), p.RefreshExpiresAt.UTC().Format(time.RFC3339))
}

// GoString hides the tokens from %#v.
func (p Pair) GoString() string { return p.String() }

// Format hides the tokens from every fmt verb.
func (p Pair) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// MarshalLogObject hides the tokens from zap.
func (p Pair) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("session_id", p.SessionID)
	enc.AddTime("expires_at", p.ExpiresAt)
	enc.AddTime("refresh_expires_at", p.RefreshExpiresAt)
	return nil
}

// Strategy issues, verifies, refreshes and revokes tokens.
type Strategy interface {
	// Name is "jwt", "db" or "redis".
	Name() string
	// Issue starts a new session (refresh family) for s.
	Issue(ctx context.Context, s Subject) (Pair, error)
	// Verify checks an access token; it fails with ErrUnauthenticated.
	Verify(ctx context.Context, accessToken string) (Principal, error)
	// Refresh spends a refresh token for a new pair; it fails with
	// ErrInvalidRefresh or, for a token already spent, ErrRefreshReused
	// after revoking the whole family.
	Refresh(ctx context.Context, refreshToken string) (Pair, error)
	// Revoke ends p's session: its access tokens and its refresh token.
	// Revoking a session that is already gone is not an error.
	Revoke(ctx context.Context, p Principal) error
	// RevokeAll ends every session of the user.
	RevokeAll(ctx context.Context, userID int) error
}

var (
	// ErrUnauthenticated: the access token is missing, malformed, tampered
	// with, expired or revoked. One error for all, so that a client learns
	// nothing about why; the wrapped detail is for logs.
	ErrUnauthenticated = errors.New("token: unauthenticated")
	// ErrInvalidRefresh: the refresh token is unknown, malformed, expired or
	// its session was revoked. The client must log in again.
	ErrInvalidRefresh = errors.New("token: invalid refresh token")
	// ErrRefreshReused: a refresh token that was already spent was presented
	// again, which means it was copied. The whole session (its newest refresh
	// token and its access tokens) has been revoked; the client must log in
	// again.
	ErrRefreshReused = errors.New("token: refresh token reused; session revoked")
)

// DefaultProvider is the platform of identities whose tokens name none.
const DefaultProvider = "wechat"

// provider returns the subject's platform, "wechat" when unset.
func (s Subject) provider() string {
	if s.Provider == "" {
		return DefaultProvider
	}
	return s.Provider
}

// unauthenticated wraps ErrUnauthenticated with a reason for logs. The reason
// must never contain the token.
func unauthenticated(reason string) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, reason)
}

// invalidRefresh wraps ErrInvalidRefresh with a reason for logs.
func invalidRefresh(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidRefresh, reason)
}
