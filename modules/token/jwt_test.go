package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/testutil"
	"github.com/wxlogin/wxlogin/modules/token"
	"github.com/wxlogin/wxlogin/modules/token/tokentest"
)

// jwtOn builds a jwt strategy with cfg on a fresh SQLite.
func jwtOn(t *testing.T, cfg config.Token) (*token.JWT, func(testing.TB) token.Subject) {
	t.Helper()
	client := testutil.SQLite(t)
	keys, err := token.NewKeySet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := token.NewJWT(client, keys, token.NewDBDenyList(client), token.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return j, tokentest.EntSubjects(client)
}

func sign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims(cfg config.Token) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": cfg.Issuer, "aud": cfg.JWTAudience(), "sub": "42", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": "jti-1", "sid": "sid-not-denied", "appid": "wxapp", "openid": "o1",
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for key, val := range c {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestJWTVerificationIsStrict(t *testing.T) {
	ctx := context.Background()
	hs := testConfig(t, token.NameJWT, token.AlgHS256)
	ed := testConfig(t, token.NameJWT, token.AlgEdDSA)
	hsJWT, _ := jwtOn(t, hs)
	edJWT, _ := jwtOn(t, ed)
	hsKID := hsJWT.Keys().SigningKeyID()
	edKID := edJWT.Keys().SigningKeyID()
	edKeys, err := ed.Ed25519Keys()
	if err != nil {
		t.Fatal(err)
	}
	edPriv := edKeys[0].PrivateKey
	edPub := edPriv.Public().(ed25519.PublicKey)
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	secret := []byte(hs.Secret)

	// The forgeries are checked against a well-formed control first.
	if _, err := hsJWT.Verify(ctx, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, validClaims(hs))); err != nil {
		t.Fatalf("control HS256 token refused: %v", err)
	}
	if _, err := edJWT.Verify(ctx, sign(t, jwt.SigningMethodEdDSA, edPriv, map[string]any{"kid": edKID}, validClaims(ed))); err != nil {
		t.Fatalf("control EdDSA token refused: %v", err)
	}

	cases := []struct {
		name     string
		verifier *token.JWT
		tok      string
	}{
		{"alg none", hsJWT, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": hsKID}, validClaims(hs))},
		{"alg none against EdDSA", edJWT, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": edKID}, validClaims(ed))},
		{"HS256 keyed with the raw public key", edJWT, sign(t, jwt.SigningMethodHS256, []byte(edPub), map[string]any{"kid": edKID}, validClaims(ed))},
		{"HS256 keyed with the JWKS x", edJWT, sign(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(edPub)), map[string]any{"kid": edKID}, validClaims(ed))},
		{"EdDSA against an HS256 verifier", hsJWT, sign(t, jwt.SigningMethodEdDSA, edPriv, map[string]any{"kid": hsKID}, validClaims(hs))},
		{"HS384 with the right secret", hsJWT, sign(t, jwt.SigningMethodHS384, secret, map[string]any{"kid": hsKID}, validClaims(hs))},
		{"wrong secret, right kid", hsJWT, sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 40)), map[string]any{"kid": hsKID}, validClaims(hs))},
		{"stranger's Ed25519 key, right kid", edJWT, sign(t, jwt.SigningMethodEdDSA, strangerKey, map[string]any{"kid": edKID}, validClaims(ed))},
		{"wrong iss", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "iss", "someone-else"))},
		{"no iss", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "iss", nil))},
		{"another service's aud", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "aud", "orders-service"))},
		{"another service's aud among others", edJWT, sign(t, jwt.SigningMethodEdDSA, edPriv, map[string]any{"kid": edKID}, with(validClaims(ed), "aud", []string{"orders-service", "billing"}))},
		{"no aud", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "aud", nil))},
		{"no exp", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "exp", nil))},
		{"expired", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "exp", time.Now().Add(-time.Second).Unix()))},
		{"not valid yet", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "nbf", time.Now().Add(time.Hour).Unix()))},
		{"unknown kid", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": "k-unknown"}, validClaims(hs))},
		{"no kid", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": nil}, validClaims(hs))},
		{"kid of the other algorithm", edJWT, sign(t, jwt.SigningMethodEdDSA, edPriv, map[string]any{"kid": hsKID}, validClaims(ed))},
		{"no sub", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "sub", nil))},
		{"sub not a user id", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "sub", "admin"))},
		{"no sid", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "sid", nil))},
		{"no jti", hsJWT, sign(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": hsKID}, with(validClaims(hs), "jti", nil))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.verifier.Verify(ctx, c.tok)
			if !errors.Is(err, token.ErrUnauthenticated) {
				t.Fatalf("got %v, want ErrUnauthenticated", err)
			}
			if strings.Contains(err.Error(), c.tok) || strings.Contains(err.Error(), hs.Secret) {
				t.Fatalf("error quotes secret material: %q", err)
			}
		})
	}
}

func TestJWTClaims(t *testing.T) {
	for _, alg := range []string{token.AlgHS256, token.AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			cfg := testConfig(t, token.NameJWT, alg)
			j, subjects := jwtOn(t, cfg)
			s := subjects(t)
			pair, err := j.Issue(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			var claims jwt.MapClaims
			tok, _, err := jwt.NewParser().ParseUnverified(pair.AccessToken, &claims)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Header["alg"] != alg || tok.Header["kid"] != j.Keys().SigningKeyID() {
				t.Fatalf("header %v: want alg %s and kid %s", tok.Header, alg, j.Keys().SigningKeyID())
			}
			want := map[string]any{"iss": cfg.Issuer, "sub": fmt.Sprint(s.UserID), "sid": pair.SessionID, "appid": s.AppID, "openid": s.OpenID}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			for _, k := range []string{"iat", "exp", "jti"} {
				if claims[k] == nil {
					t.Errorf("claim %s missing", k)
				}
			}
			if aud, _ := claims.GetAudience(); len(aud) != 1 || aud[0] != cfg.JWTAudience() {
				t.Errorf("aud %v, want [%s]", aud, cfg.JWTAudience())
			}
			if exp, _ := claims.GetExpirationTime(); exp == nil || !exp.Time.Equal(pair.ExpiresAt) {
				t.Errorf("exp %v, pair says %v", exp, pair.ExpiresAt)
			}
			if alg == token.AlgHS256 && strings.Contains(j.Keys().SigningKeyID(), cfg.Secret[:8]) {
				t.Error("the HS256 kid shows part of the secret")
			}
		})
	}
}

func TestJWTKeyRotation(t *testing.T) {
	ctx := context.Background()
	t.Run("HS256", func(t *testing.T) {
		client := testutil.SQLite(t)
		subjects := tokentest.EntSubjects(client)
		build := func(secret, previous string) *token.JWT {
			cfg := testConfig(t, token.NameJWT, token.AlgHS256)
			cfg.Secret, cfg.PreviousSecrets = secret, previous
			keys, err := token.NewKeySet(cfg)
			if err != nil {
				t.Fatal(err)
			}
			j, err := token.NewJWT(client, keys, token.NewDBDenyList(client), token.Options{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			return j
		}
		oldSecret, newSecret := strings.Repeat("o", 40), strings.Repeat("n", 40)
		before := build(oldSecret, "")
		during := build(newSecret, oldSecret)
		after := build(newSecret, "")
		rotationCase(t, ctx, subjects(t), before, during, after)
		if before.Keys().SigningKeyID() == during.Keys().SigningKeyID() {
			t.Fatal("a new secret kept the old kid")
		}
	})
	t.Run("EdDSA", func(t *testing.T) {
		client := testutil.SQLite(t)
		subjects := tokentest.EntSubjects(client)
		k1, _ := config.NewJWTKey("k1")
		k2, _ := config.NewJWTKey("k2")
		build := func(keys string) *token.JWT {
			cfg := testConfig(t, token.NameJWT, token.AlgEdDSA)
			cfg.JWTKeys = keys
			ks, err := token.NewKeySet(cfg)
			if err != nil {
				t.Fatal(err)
			}
			j, err := token.NewJWT(client, ks, token.NewDBDenyList(client), token.Options{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			return j
		}
		before, during, after := build(k1), build(k2+","+k1), build(k2)
		rotationCase(t, ctx, subjects(t), before, during, after)
		if during.Keys().SigningKeyID() != "k2" {
			t.Fatalf("new tokens are signed with %s, want the newest key k2", during.Keys().SigningKeyID())
		}
	})
}

// rotationCase: a token from before the rotation verifies during it; new
// tokens carry the new kid; once the old key is dropped its tokens fail.
func rotationCase(t *testing.T, ctx context.Context, s token.Subject, before, during, after *token.JWT) {
	t.Helper()
	old, err := before.Issue(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := during.Verify(ctx, old.AccessToken); err != nil {
		t.Fatalf("a token signed with the previous key is refused during rotation: %v", err)
	}
	fresh, err := during.Issue(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := jwt.NewParser().ParseUnverified(fresh.AccessToken, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != during.Keys().SigningKeyID() || tok.Header["kid"] == before.Keys().SigningKeyID() {
		t.Fatalf("a new token has kid %v, want the newest %s", tok.Header["kid"], during.Keys().SigningKeyID())
	}
	if _, err := after.Verify(ctx, fresh.AccessToken); err != nil {
		t.Fatalf("a token signed with the newest key is refused: %v", err)
	}
	if _, err := after.Verify(ctx, old.AccessToken); !errors.Is(err, token.ErrUnauthenticated) {
		t.Fatalf("a token of a dropped key: got %v, want ErrUnauthenticated", err)
	}
	if _, err := before.Verify(ctx, fresh.AccessToken); !errors.Is(err, token.ErrUnauthenticated) {
		t.Fatalf("an instance without the new key: got %v, want ErrUnauthenticated", err)
	}
}

func TestJWKS(t *testing.T) {
	k1, _ := config.NewJWTKey("k1")
	k2, _ := config.NewJWTKey("k2")
	cfg := testConfig(t, token.NameJWT, token.AlgEdDSA)
	cfg.JWTKeys = k2 + "," + k1
	j, subjects := jwtOn(t, cfg)
	doc, ok := j.Keys().JWKS()
	if !ok {
		t.Fatal("EdDSA keys publish no JWKS")
	}
	for _, item := range strings.Split(cfg.JWTKeys, ",") {
		_, seed, _ := strings.Cut(item, ":")
		if strings.Contains(string(doc), seed) {
			t.Fatal("the JWKS contains a private seed")
		}
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys published, want 2", len(set.Keys))
	}
	pubs := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if _, has := k["d"]; has {
			t.Fatalf("a published key has a private member d: %v", k)
		}
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" {
			t.Fatalf("key %v is not an Ed25519 signing key", k)
		}
		x, err := base64.RawURLEncoding.DecodeString(k["x"].(string))
		if err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("key %v: x is not a public key", k)
		}
		pubs[k["kid"].(string)] = x
	}

	// Another service verifies our tokens with the JWKS alone.
	pair, err := j.Issue(context.Background(), subjects(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = jwt.Parse(pair.AccessToken, func(tok *jwt.Token) (any, error) {
		k, ok := pubs[tok.Header["kid"].(string)]
		if !ok {
			return nil, errors.New("kid not in JWKS")
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(cfg.Issuer), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("a token does not verify with the JWKS: %v", err)
	}

	hs, _ := jwtOn(t, testConfig(t, token.NameJWT, token.AlgHS256))
	if doc, ok := hs.Keys().JWKS(); ok || doc != nil {
		t.Fatal("HS256 publishes a JWKS; its keys are secret")
	}
}

func TestKeysNeverPrinted(t *testing.T) {
	for _, alg := range []string{token.AlgHS256, token.AlgEdDSA} {
		cfg := testConfig(t, token.NameJWT, alg)
		cfg.PreviousSecrets = strings.Repeat("p", 40)
		j, _ := jwtOn(t, cfg)
		out := fmt.Sprintf("%v %+v %#v %s", j, j, j.Keys(), j.Keys())
		_, seed, _ := strings.Cut(cfg.JWTKeys, ":")
		for _, secret := range []string{cfg.Secret, cfg.PreviousSecrets, seed} {
			if strings.Contains(out, secret) {
				t.Fatalf("%s: printing the strategy shows key material: %s", alg, out)
			}
		}
	}
}

func TestKeySetRefusesBadConfig(t *testing.T) {
	cases := map[string]func(*config.Token){
		"short secret":          func(c *config.Token) { c.Secret = "short" },
		"short previous secret": func(c *config.Token) { c.PreviousSecrets = "short" },
		"unknown alg":           func(c *config.Token) { c.JWTAlg = "RS256" },
		"EdDSA without keys":    func(c *config.Token) { c.JWTAlg, c.JWTKeys = token.AlgEdDSA, "" },
		"EdDSA bad seed":        func(c *config.Token) { c.JWTAlg, c.JWTKeys = token.AlgEdDSA, "k1:c2VjcmV0LXNlZWQ" },
	}
	for name, mutate := range cases {
		cfg := testConfig(t, token.NameJWT, token.AlgHS256)
		mutate(&cfg)
		_, err := token.NewKeySet(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "c2VjcmV0LXNlZWQ") || (cfg.Secret != "short" && strings.Contains(err.Error(), cfg.Secret)) {
			t.Errorf("%s: the error shows key material: %v", name, err)
		}
	}
}
