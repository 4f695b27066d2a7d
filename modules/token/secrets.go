package token

import (
	"context"
	"crypto/hmac"
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

	// refreshKeys tag refresh secrets (see newRefreshSecret); the first tags.
	refreshKeys [][]byte
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
	o.refreshKeys = nil
	for _, secret := range append([]string{o.Config.Secret}, o.Config.PreviousSecretList()...) {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte("wxlogin refresh token tag"))
		o.refreshKeys = append(o.refreshKeys, mac.Sum(nil))
	}
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

// Refresh secrets are 16 random bytes and a 16-byte tag, an HMAC of the
// session id and those bytes under a key derived from the token secret.
// Only the tag tells a token this service issued (whose hash mismatch
// means a spent token came back: theft, the family is revoked) from a
// forged "<sid>.<anything>" (merely invalid): without it, anyone who saw a
// session id, which JWTs carry, could end that session.
const refreshRandomBytes, refreshTagBytes = 16, 16

// newRefreshSecret returns a tagged secret for session sid.
func newRefreshSecret(o Options, sid string) string {
	raw := make([]byte, refreshRandomBytes, refreshRandomBytes+refreshTagBytes)
	_, _ = rand.Read(raw)
	raw = append(raw, refreshTag(o.refreshKeys[0], sid, raw)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func refreshTag(key []byte, sid string, random []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sid))
	mac.Write([]byte{'.'})
	mac.Write(random)
	return mac.Sum(nil)[:refreshTagBytes]
}

// parseRefresh splits a refresh token; ok is false when it is malformed or
// its tag shows this service did not issue it (under the current or a
// previous token secret).
func parseRefresh(o Options, tok string) (sid, secret string, ok bool) {
	sid, secret, ok = strings.Cut(tok, ".")
	if !ok || !isBase64URL(sid, sessionLen) || !isBase64URL(secret, secretLen) {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) != refreshRandomBytes+refreshTagBytes {
		return "", "", false
	}
	for _, key := range o.refreshKeys {
		if hmac.Equal(refreshTag(key, sid, raw[:refreshRandomBytes]), raw[refreshRandomBytes:]) {
			return sid, secret, true
		}
	}
	return "", "", false
}

// expiry is now+d, truncated to the second as JWT's NumericDate is, so that
// every strategy reports the same instant the token carries.
func expiry(now time.Time, d time.Duration) time.Time {
	return now.Add(d).Truncate(time.Second).UTC()
}
