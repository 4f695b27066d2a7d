package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxlogin/wxlogin/config"
)

// JWT algorithms.
const (
	AlgHS256 = "HS256"
	AlgEdDSA = "EdDSA"
)

// KeySet holds the JWT keys: the newest signs, every listed one verifies
// (rotation). HS256 keys are config.Token.Secret (signs) and
// PreviousSecretList (verify); EdDSA keys are config.Token.Ed25519Keys.
// It never prints its secrets.
type KeySet struct {
	alg     string
	method  jwt.SigningMethod
	signKID string
	signKey any
	verify  map[string]any
	jwks    []byte
}

// NewKeySet reads the keys of cfg for cfg.JWTAlg.
func NewKeySet(cfg config.Token) (*KeySet, error) {
	k := &KeySet{alg: cfg.JWTAlg, verify: map[string]any{}}
	switch cfg.JWTAlg {
	case AlgHS256, "":
		k.alg, k.method = AlgHS256, jwt.SigningMethodHS256
		if len(cfg.Secret) < config.MinSecretBytes {
			return nil, errConfig(fmt.Sprintf("the HS256 secret must be at least %d bytes", config.MinSecretBytes))
		}
		k.signKID = hmacKID(cfg.Secret)
		k.signKey = []byte(cfg.Secret)
		k.verify[k.signKID] = []byte(cfg.Secret)
		for _, s := range cfg.PreviousSecretList() {
			if len(s) < config.MinSecretBytes {
				return nil, errConfig(fmt.Sprintf("every previous HS256 secret must be at least %d bytes", config.MinSecretBytes))
			}
			if _, dup := k.verify[hmacKID(s)]; !dup {
				k.verify[hmacKID(s)] = []byte(s)
			}
		}
	case AlgEdDSA:
		k.method = jwt.SigningMethodEdDSA
		keys, err := cfg.Ed25519Keys()
		if err != nil {
			// The parse error names the kid, never the seed.
			return nil, errConfig("APP_TOKEN_JWT_KEYS: " + err.Error())
		}
		k.signKID, k.signKey = keys[0].ID, keys[0].PrivateKey
		doc := jwks{Keys: make([]jwk, 0, len(keys))}
		for _, key := range keys {
			pub := key.PrivateKey.Public().(ed25519.PublicKey)
			k.verify[key.ID] = pub
			doc.Keys = append(doc.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub),
				Kid: key.ID, Alg: AlgEdDSA, Use: "sig"})
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("token: encode JWKS: %w", err)
		}
		k.jwks = b
	default:
		return nil, errConfig(fmt.Sprintf("unknown JWT algorithm %q (HS256 or EdDSA)", cfg.JWTAlg))
	}
	return k, nil
}

// hmacKID names an HS256 secret by a hash of it, never by the secret.
func hmacKID(secret string) string {
	sum := sha256.Sum256([]byte("wxlogin hs256 kid\x00" + secret))
	return "hs-" + hex.EncodeToString(sum[:8])
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

// jwk is a public Ed25519 key (RFC 8037); it has no "d".
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is the JSON Web Key Set of the public keys, for
// GET /.well-known/jwks.json; ok is false with HS256, whose keys are secret.
func (k *KeySet) JWKS() (doc []byte, ok bool) {
	if k.jwks == nil {
		return nil, false
	}
	return append([]byte(nil), k.jwks...), true
}

// Algorithm is "HS256" or "EdDSA".
func (k *KeySet) Algorithm() string { return k.alg }

// SigningKeyID is the kid new tokens carry.
func (k *KeySet) SigningKeyID() string { return k.signKID }

// KeyIDs lists the kids that verify, the signing one first.
func (k *KeySet) KeyIDs() []string {
	ids := []string{k.signKID}
	for id := range k.verify {
		if id != k.signKID {
			ids = append(ids, id)
		}
	}
	return ids
}

// String names the algorithm and kids, never the keys.
func (k *KeySet) String() string {
	return fmt.Sprintf("token.KeySet{%s, kids %s}", k.alg, strings.Join(k.KeyIDs(), ","))
}

// GoString is String.
func (k *KeySet) GoString() string { return k.String() }

// keyFor finds the verification key of a token's kid among the configured
// ones only.
func (k *KeySet) keyFor(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	key, ok := k.verify[kid]
	if !ok {
		return nil, fmt.Errorf("unknown kid")
	}
	return key, nil
}
