package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
)

// Options are what every strategy constructor takes besides its storage.
type Options struct {
	// Config is the token section: lifetimes, issuer, keys.
	Config config.Token
	// Feed announces revocations to the caches of every instance; nil means
	// a feed that reaches this instance only ([NewLocalFeed]).
	Feed Feed
	// Logger receives warnings (refresh token reuse); nil means no logs.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now. Tests move it forward.
	Now func() time.Time
}

func (o Options) complete() Options {
	if o.Feed == nil {
		o.Feed = NewLocalFeed()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	// Instants go to the stores in UTC: SQLite compares them as text.
	now := o.Now
	if now == nil {
		now = time.Now
	}
	o.Now = func() time.Time { return now().UTC() }
	return o
}

func (o Options) check() error {
	if o.Config.TTL <= 0 {
		return errConfig("the access token lifetime (TTL) must be positive")
	}
	if o.Config.RefreshTTL < o.Config.TTL {
		return errConfig("the refresh token lifetime must be at least the access token lifetime")
	}
	return nil
}

type configError string

// Error says what to fix.
func (e configError) Error() string { return "token: " + string(e) }

func errConfig(msg string) error { return configError(msg) }

// StoreTimeout bounds every call of a strategy to its database or Redis,
// whatever the caller's context allows.
const StoreTimeout = 5 * time.Second

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, StoreTimeout)
}

const (
	secretBytes = 32
	// secretLen is the length of 32 bytes in unpadded base64url.
	secretLen  = 43
	sessionIDB = 16
	sessionLen = 22
)

// newSecret returns 32 random bytes in unpadded base64url.
func newSecret() string { return randomString(secretBytes) }

// newSessionID returns a random opaque session id.
func newSessionID() string { return randomString(sessionIDB) }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand aborts the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashHex is the SHA-256 of s in lowercase hex: what the stores keep.
func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tokenIDOf is a short, non-secret name for an opaque token, from its hash.
func tokenIDOf(hash string) string { return hash[:16] }

// isBase64URL reports whether s has exactly n unpadded base64url characters.
func isBase64URL(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isOpaque reports whether s looks like an opaque access token.
func isOpaque(s string) bool { return isBase64URL(s, secretLen) }

// refreshToken joins a session id and a secret: "<sid>.<secret>", so that a
// replayed old token names its family.
func refreshToken(sid, secret string) string { return sid + "." + secret }

// parseRefresh splits a refresh token; ok is false when it is malformed.
func parseRefresh(tok string) (sid, secret string, ok bool) {
	sid, secret, ok = strings.Cut(tok, ".")
	if !ok || !isBase64URL(sid, sessionLen) || !isBase64URL(secret, secretLen) {
		return "", "", false
	}
	return sid, secret, true
}

// expiry is now+d, truncated to the second as JWT's NumericDate is, so that
// every strategy reports the same instant the token carries.
func expiry(now time.Time, d time.Duration) time.Time {
	return now.Add(d).Truncate(time.Second).UTC()
}
