package token

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/seal"
	"github.com/wxlogin/wxlogin/modules/database"
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
	// Batch lets the jwt and db strategies issue a session in one round
	// trip on MySQL (database.Module provides it there); nil: statement by
	// statement.
	Batch *database.Batch

	// refreshKeys tag refresh secrets (see newRefreshSecret); the first tags.
	refreshKeys [][]byte
	// access seals opaque access tokens, refresh the current refresh secret
	// kept for the grace window, sid the user id in redis session ids.
	access, refresh, sid *seal.Ring
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
	secrets := append([]string{o.Config.Secret}, o.Config.PreviousSecretList()...)
	o.refreshKeys = derive(secrets, "wxlogin refresh token tag")
	o.access = ring(derive(secrets, "wxlogin opaque access token v2"))
	o.refresh = ring(derive(secrets, "wxlogin sealed refresh secret v1"))
	o.sid = ring(derive(secrets, "wxlogin redis session id v1"))
	return o
}

// derive returns one 32-byte key per secret for one purpose.
func derive(secrets []string, purpose string) [][]byte {
	keys := make([][]byte, 0, len(secrets))
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(purpose))
		keys = append(keys, mac.Sum(nil))
	}
	return keys
}

// ring seals small values with AES-256-GCM under the keys of one purpose:
// the current secret's key seals, every key opens (secret rotation).
func ring(keys [][]byte) *seal.Ring {
	ks := make([]seal.Key, len(keys))
	for i, k := range keys {
		ks[i] = seal.Key{ID: fmt.Sprint("k", i), Secret: k}
	}
	return seal.Must(seal.New(ks...)) // 32-byte keys from derive: cannot fail
}

func (o Options) check() error {
	if o.Config.TTL <= 0 {
		return errConfig("the access token lifetime (TTL) must be positive")
	}
	if o.Config.RefreshTTL < o.Config.TTL {
		return errConfig("the refresh token lifetime must be at least the access token lifetime")
	}
	if o.Config.RefreshIdle < 0 || (o.Config.RefreshIdle > 0 && o.Config.RefreshIdle < o.Config.TTL) {
		return errConfig("the refresh idle timeout must be 0 (off) or at least the access token lifetime")
	}
	if o.Config.RefreshGrace < 0 || o.Config.SessionMax < 0 {
		return errConfig("the refresh grace and the session maximum must not be negative")
	}
	if o.Config.Secret == "" {
		return errConfig("the token secret must not be empty")
	}
	return nil
}

// newRefreshExpiry is when a new session ends unless refreshed.
func (o Options) newRefreshExpiry(now time.Time) time.Time {
	d := o.Config.RefreshTTL
	if o.Config.RefreshIdle > 0 {
		d = min(d, o.Config.RefreshIdle)
	}
	return expiry(now, d)
}

// rotatedRefreshExpiry is when a session begun at created ends unless
// refreshed again, after a refresh at now: the refresh TTL from now, or,
// with an idle timeout, the idle timeout from now within the refresh TTL
// from the login (the absolute bound).
func (o Options) rotatedRefreshExpiry(created, now time.Time) time.Time {
	if o.Config.RefreshIdle <= 0 {
		return expiry(now, o.Config.RefreshTTL)
	}
	end := expiry(created, o.Config.RefreshTTL)
	if idle := expiry(now, o.Config.RefreshIdle); idle.Before(end) {
		return idle
	}
	return end
}

// inGrace reports whether a refresh token replaced at rotated may still be
// presented at now.
func (o Options) inGrace(rotated, now time.Time) bool {
	return o.Config.RefreshGrace > 0 && !rotated.IsZero() && !now.After(rotated.Add(o.Config.RefreshGrace))
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

// An opaque access token (db and redis strategies) is the base64url of a
// sealed (expiry, user id): 12 bytes of nonce, 12 of ciphertext, 16 of tag.
// The nonce makes it unguessable, the tag lets Verify refuse a forged or
// tampered token, and an expired one with the right reason, without asking
// the store; the user id gives the redis strategy the hash tag of the
// token's key (Redis Cluster) without showing it to anyone. The store keeps
// only the token's SHA-256.
const (
	opaquePlain = 4 + 8
	opaqueLen   = ((seal.NonceSize+opaquePlain+seal.Overhead)*8 + 5) / 6 // 40 bytes → 54 characters (no padding)
)

var adAccess = []byte("wxlogin access token")

// newOpaque returns a new opaque access token for userID expiring at exp.
func newOpaque(o Options, userID int, exp time.Time) string {
	var plain [opaquePlain]byte
	binary.BigEndian.PutUint32(plain[:4], uint32(exp.Unix()))
	binary.BigEndian.PutUint64(plain[4:], uint64(userID))
	return base64.RawURLEncoding.EncodeToString(o.access.SealCompact(plain[:], adAccess))
}

// parseOpaque opens an opaque access token; ok is false when it is
// malformed or was not issued under one of the configured secrets.
func parseOpaque(o Options, tok string) (userID int, exp time.Time, ok bool) {
	if !isBase64URL(tok, opaqueLen) {
		return 0, time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, time.Time{}, false
	}
	plain, err := o.access.OpenCompact(raw, adAccess)
	if err != nil || len(plain) != opaquePlain {
		return 0, time.Time{}, false
	}
	uid := binary.BigEndian.Uint64(plain[4:])
	if uid == 0 || uid > 1<<53 {
		return 0, time.Time{}, false
	}
	return int(uid), time.Unix(int64(binary.BigEndian.Uint32(plain[:4])), 0).UTC(), true
}

var adSessionID = []byte("wxlogin redis session id")

// redisSessionLen is the length of a redis session id: a sealed user id
// (12 + 8 + 16 bytes), so that a refresh token names the hash tag of its
// session's keys.
const redisSessionLen = ((seal.NonceSize+8+seal.Overhead)*8 + 5) / 6 // 36 bytes → 48 characters

// newRedisSessionID returns a session id that carries userID sealed.
func newRedisSessionID(o Options, userID int) string {
	var plain [8]byte
	binary.BigEndian.PutUint64(plain[:], uint64(userID))
	return base64.RawURLEncoding.EncodeToString(o.sid.SealCompact(plain[:], adSessionID))
}

// redisSessionUser opens a redis session id; ok is false for anything else.
func redisSessionUser(o Options, sid string) (int, bool) {
	if !isBase64URL(sid, redisSessionLen) {
		return 0, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sid)
	if err != nil {
		return 0, false
	}
	plain, err := o.sid.OpenCompact(raw, adSessionID)
	if err != nil || len(plain) != 8 {
		return 0, false
	}
	uid := binary.BigEndian.Uint64(plain)
	if uid == 0 || uid > 1<<53 {
		return 0, false
	}
	return int(uid), true
}

// sealRefresh seals the current refresh secret of session sid for the
// grace window: a caller that presents the secret it replaced gets it.
func sealRefresh(o Options, sid, secret string) string {
	return base64.RawURLEncoding.EncodeToString(o.refresh.SealCompact([]byte(secret), []byte("wxlogin refresh "+sid)))
}

// openRefresh opens what sealRefresh sealed.
func openRefresh(o Options, sid, sealed string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", false
	}
	plain, err := o.refresh.OpenCompact(raw, []byte("wxlogin refresh "+sid))
	if err != nil || !isBase64URL(string(plain), secretLen) {
		return "", false
	}
	return string(plain), true
}

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
	if !ok || !(isBase64URL(sid, sessionLen) || isBase64URL(sid, redisSessionLen)) || !isBase64URL(secret, secretLen) {
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
