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
// # Sessions
//
// A user has several sessions, one per login (device). Each keeps the
// client kind and the device name the login gave, when it began and when it
// was last refreshed; [Strategy.Sessions] lists the live ones and
// [Strategy.RevokeSession] ends one. The session policy of config.Token
// (APP_SESSION_MAX, APP_SESSION_SINGLE_PER_CLIENT) is applied at every
// Issue, APP_TOKEN_REFRESH_IDLE at every Refresh, and APP_TOKEN_REFRESH_GRACE
// lets concurrent refreshes of one refresh token all succeed.
//
// # Errors
//
// Verify fails with [ErrUnauthenticated], Refresh with [ErrInvalidRefresh] or
// [ErrRefreshReused]; [ReasonOf] tells why (expired, logged_out, revoked, …)
// so that the client can tell "refresh" from "log in again". A store that
// does not answer (the database or Redis is down) fails with
// [ErrUnavailable]: not a verdict on the token, and never to be answered as
// one (it is a 503, never a 401).
package token

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap/zapcore"
)

// Strategy names.
const (
	NameJWT   = "jwt"
	NameDB    = "db"
	NameRedis = "redis"
)

// Client kinds a session can be of; the login handler validates them.
const (
	ClientMiniProgram = "miniprogram"
	ClientH5          = "h5"
	ClientApp         = "app"
	ClientWeb         = "web"
)

// Clients lists the client kinds.
var Clients = []string{ClientMiniProgram, ClientH5, ClientApp, ClientWeb}

// MaxDeviceLen is the most characters a device name may have.
const MaxDeviceLen = 64

// ValidClient reports whether c is one of [Clients].
func ValidClient(c string) bool {
	for _, k := range Clients {
		if c == k {
			return true
		}
	}
	return false
}

// ValidDevice reports whether d is an acceptable device name: valid UTF-8
// without control characters, at most [MaxDeviceLen] characters.
func ValidDevice(d string) bool {
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > MaxDeviceLen {
		return false
	}
	for _, r := range d {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Subject is who a new login is for: the user and the identity (one
// account on one app) they logged in with, and the device it happens on.
type Subject struct {
	UserID int
	// Provider is the identity's platform ("wechat", …); empty means "wechat".
	Provider string
	AppID    string
	OpenID   string
	// Client is the kind of client ([Clients]); the login handler checks it.
	Client string
	// Device is the client's name for itself (free text, ≤ MaxDeviceLen
	// characters), shown in the session list.
	Device string
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

// SessionInfo describes one live session of a user.
type SessionInfo struct {
	// ID is the session id (the Principal's SessionID).
	ID       string
	Client   string
	Device   string
	Provider string
	AppID    string
	// CreatedAt is the login; LastSeenAt the last login or refresh.
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is when the session ends unless it is refreshed.
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
	// Issue starts a new session (refresh family) for s, and applies the
	// session policy: it may end other sessions of the user
	// ([ReasonReplaced], [ReasonSessionLimit]).
	Issue(ctx context.Context, s Subject) (Pair, error)
	// Verify checks an access token; it fails with ErrUnauthenticated
	// ([ReasonOf] tells why) or ErrUnavailable.
	Verify(ctx context.Context, accessToken string) (Principal, error)
	// Refresh spends a refresh token for a new pair; it fails with
	// ErrInvalidRefresh or, for a token already spent (outside the grace
	// window), ErrRefreshReused after revoking the whole family.
	Refresh(ctx context.Context, refreshToken string) (Pair, error)
	// Revoke logs p's session out ([ReasonLoggedOut]): its access tokens and
	// its refresh token. Revoking a session that is already gone is not an
	// error.
	Revoke(ctx context.Context, p Principal) error
	// RevokeSession ends one live session of the user with reason; it
	// fails with ErrSessionNotFound when the user has no such live session
	// (unknown, another user's, already ended).
	RevokeSession(ctx context.Context, userID int, sessionID string, reason Reason) error
	// RevokeAll ends every session of the user with reason.
	RevokeAll(ctx context.Context, userID int, reason Reason) error
	// Sessions lists the user's live sessions, the most recently seen first.
	Sessions(ctx context.Context, userID int) ([]SessionInfo, error)
}

// Reason is why a token stopped working, told to the client in the error
// body: "expired" means refresh; the others mean log in again.
type Reason string

// Reasons.
const (
	// ReasonExpired: the token (or the session, refresh token unused for
	// too long) ran out of time.
	ReasonExpired Reason = "expired"
	// ReasonLoggedOut: the user logged out (this session, or everywhere).
	ReasonLoggedOut Reason = "logged_out"
	// ReasonReplaced: a newer login of the same client ended the session
	// (APP_SESSION_SINGLE_PER_CLIENT).
	ReasonReplaced Reason = "replaced"
	// ReasonSessionLimit: a login beyond APP_SESSION_MAX ended the oldest session.
	ReasonSessionLimit Reason = "session_limit"
	// ReasonRevoked: the user (from another device) or an operator ended
	// the session, or a reused refresh token revoked it.
	ReasonRevoked Reason = "revoked"
	// ReasonUserBanned: the user was banned.
	ReasonUserBanned Reason = "user_banned"
	// ReasonUserDeleted: the user was deleted.
	ReasonUserDeleted Reason = "user_deleted"
	// ReasonInvalid: malformed, tampered with or unknown.
	ReasonInvalid Reason = "invalid"
)

// Reasons lists every reason.
var Reasons = []Reason{ReasonExpired, ReasonLoggedOut, ReasonReplaced, ReasonSessionLimit,
	ReasonRevoked, ReasonUserBanned, ReasonUserDeleted, ReasonInvalid}

// revokeReason is the reason a revocation stores: one of Reasons, anything
// else (or none) is "revoked".
func revokeReason(r Reason) Reason {
	switch r {
	case ReasonLoggedOut, ReasonReplaced, ReasonSessionLimit, ReasonRevoked, ReasonUserBanned, ReasonUserDeleted:
		return r
	}
	return ReasonRevoked
}

// storedReason reads a reason a store kept, including the names sessions
// were revoked with before reasons were told to clients.
func storedReason(s string) Reason {
	switch s {
	case "logout", "logout_all":
		return ReasonLoggedOut
	case "", "refresh_reuse":
		return ReasonRevoked
	}
	return revokeReason(Reason(s))
}

var (
	// ErrUnauthenticated: the access token is missing, malformed, tampered
	// with, expired or revoked; [ReasonOf] tells which (the detail of the
	// error text is for logs).
	ErrUnauthenticated = errors.New("token: unauthenticated")
	// ErrInvalidRefresh: the refresh token is unknown, malformed, expired or
	// its session was revoked; [ReasonOf] tells why when the store still
	// knows. The client must log in again.
	ErrInvalidRefresh = errors.New("token: invalid refresh token")
	// ErrRefreshReused: a refresh token that was already spent was presented
	// again after the grace window, which means it was copied. The whole
	// session (its newest refresh token and its access tokens) has been
	// revoked; the client must log in again.
	ErrRefreshReused = errors.New("token: refresh token reused; session revoked")
	// ErrSessionNotFound: RevokeSession named no live session of that user.
	ErrSessionNotFound = errors.New("token: no such session")
	// ErrUnavailable: the token store (database or Redis) did not answer.
	// It is not a verdict on the token: answer 503, never 401.
	ErrUnavailable = errors.New("token: token store unavailable")
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

// rejection is ErrUnauthenticated or ErrInvalidRefresh with the reason the
// client is told and a detail for logs (never the token).
type rejection struct {
	kind   error
	reason Reason
	detail string
}

func (e *rejection) Error() string {
	if e.reason != "" {
		return e.kind.Error() + " (" + string(e.reason) + "): " + e.detail
	}
	return e.kind.Error() + ": " + e.detail
}

func (e *rejection) Unwrap() error { return e.kind }

// ReasonOf is why err refused a token: the reason of an ErrUnauthenticated
// ([ReasonInvalid] when none is known) or of an ErrInvalidRefresh (empty
// when the store no longer knows), else "".
func ReasonOf(err error) Reason {
	var r *rejection
	if errors.As(err, &r) && r.reason != "" {
		return r.reason
	}
	if errors.Is(err, ErrUnauthenticated) {
		return ReasonInvalid
	}
	return ""
}

// Unauthenticated is an ErrUnauthenticated for reason, for strategies of
// one's own; detail is for logs and must never contain the token.
func Unauthenticated(reason Reason, detail string) error {
	return &rejection{kind: ErrUnauthenticated, reason: reason, detail: detail}
}

// InvalidRefresh is an ErrInvalidRefresh for reason (which may be empty).
func InvalidRefresh(reason Reason, detail string) error {
	return &rejection{kind: ErrInvalidRefresh, reason: reason, detail: detail}
}

func unauthenticated(reason Reason, detail string) error { return Unauthenticated(reason, detail) }
func invalidRefresh(reason Reason, detail string) error  { return InvalidRefresh(reason, detail) }

// storeError is a store that did not answer: errors.Is finds both
// ErrUnavailable and the cause.
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string   { return "token: " + e.op + ": " + e.err.Error() }
func (e *storeError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// unavailable wraps a failure of the database or Redis during op.
func unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *storeError
	if errors.As(err, &se) {
		return err
	}
	return &storeError{op: op, err: err}
}
