// Package seal encrypts short secrets kept at rest (session keys) with
// AES-256-GCM under a rotatable ring of keys: the first key seals, every
// key opens. A sealed value names its key and is bound to where it is kept
// (associated data), so a database dump alone reveals nothing and a value
// copied to another row does not open there.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// prefix starts every sealed value, so that a plaintext kept by an older
// version is told apart.
const prefix = "s1."

// Key is one key of a ring.
type Key struct {
	// ID names the key inside sealed values; not secret.
	ID     string
	Secret []byte
}

// Ring seals with its first key and opens with any of them.
type Ring struct {
	keys []ringKey
}

type ringKey struct {
	id   string
	aead cipher.AEAD
}

// ErrOpen means a sealed value does not open: another key, another place,
// or tampered with.
var ErrOpen = errors.New("seal: the value does not open with any key of the ring")

// New returns a ring of keys; the first seals.
func New(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: a ring needs a key")
	}
	r := &Ring{}
	seen := map[string]bool{}
	for _, k := range keys {
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("seal: key %q must be %d bytes", k.ID, KeySize)
		}
		if k.ID == "" || strings.ContainsAny(k.ID, ".") || seen[k.ID] {
			return nil, fmt.Errorf("seal: key ids must be unique, non-empty and without '.' (%q)", k.ID)
		}
		seen[k.ID] = true
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		r.keys = append(r.keys, ringKey{id: k.ID, aead: aead})
	}
	return r, nil
}

// Must returns the ring of New or panics: for keys that cannot be wrong
// (derived ones).
func Must(r *Ring, err error) *Ring {
	if err != nil {
		panic(err)
	}
	return r
}

// Derive makes a key from a longer secret for one purpose, so that one
// configured secret can serve several uses without their keys meeting.
func Derive(secret, purpose string) Key {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("wxlogin seal: " + purpose))
	k := mac.Sum(nil)
	id := sha256.Sum256(k)
	return Key{ID: "d" + hex.EncodeToString(id[:4]), Secret: k}
}

// Seal encrypts plaintext under the first key, bound to aad.
func (r *Ring) Seal(plaintext, aad []byte) string {
	k := r.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand does not fail
	out := k.aead.Seal(nonce, nonce, plaintext, aad)
	return prefix + k.id + "." + base64.RawURLEncoding.EncodeToString(out)
}

// Open decrypts a sealed value bound to aad with the key it names.
func (r *Ring) Open(sealed string, aad []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return nil, ErrOpen
	}
	id, data, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, ErrOpen
	}
	raw, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil {
		return nil, ErrOpen
	}
	for _, k := range r.keys {
		if k.id != id {
			continue
		}
		if len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
			return nil, ErrOpen
		}
		plain, err := k.aead.Open(nil, raw[:k.aead.NonceSize()], raw[k.aead.NonceSize():], aad)
		if err != nil {
			return nil, ErrOpen
		}
		return plain, nil
	}
	return nil, ErrOpen
}

// Compact forms leave the key id and prefix out, for values whose length is
// a contract (an opaque access token): nonce ‖ ciphertext ‖ tag, sealed with
// the first key and opened by trying every key of the ring.
const (
	// NonceSize and Overhead are the compact form's bytes besides the
	// plaintext: CompactLen(n) = NonceSize + n + Overhead.
	NonceSize = 12
	Overhead  = 16
)

// CompactLen is the length in bytes of a compact sealed plaintext of n bytes.
func CompactLen(n int) int { return NonceSize + n + Overhead }

// SealCompact encrypts plaintext under the first key, bound to aad, in the
// compact form.
func (r *Ring) SealCompact(plaintext, aad []byte) []byte {
	out := make([]byte, NonceSize, CompactLen(len(plaintext)))
	_, _ = rand.Read(out) // crypto/rand does not fail
	return r.keys[0].aead.Seal(out, out, plaintext, aad)
}

// OpenCompact decrypts a compact sealed value bound to aad with whichever
// key of the ring authenticates it.
func (r *Ring) OpenCompact(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < NonceSize+Overhead {
		return nil, ErrOpen
	}
	for _, k := range r.keys {
		if plain, err := k.aead.Open(nil, sealed[:NonceSize], sealed[NonceSize:], aad); err == nil {
			return plain, nil
		}
	}
	return nil, ErrOpen
}

// IsSealed reports whether s looks like a sealed value (rather than a
// plaintext an older version kept).
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// SealedLen is the length of a sealed plaintext of n bytes under a key id
// of idLen characters: what a column must hold.
func SealedLen(n, idLen int) int {
	return len(prefix) + idLen + 1 + base64.RawURLEncoding.EncodedLen(12+n+16)
}
