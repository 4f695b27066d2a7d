package rsakey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func mustKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPrivateKeyForms(t *testing.T) {
	k := mustKey(t, 2048)
	pkcs1 := x509.MarshalPKCS1PrivateKey(k)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	forms := map[string]string{
		"PKCS#1 PEM":         string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1})),
		"PKCS#8 PEM":         string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		"PKCS#1 base64":      base64.StdEncoding.EncodeToString(pkcs1),
		"PKCS#8 base64":      base64.StdEncoding.EncodeToString(pkcs8),
		"PKCS#8 base64 wrap": wrap(base64.StdEncoding.EncodeToString(pkcs8)),
	}
	for name, s := range forms {
		got, err := ParsePrivateKey(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Equal(k) {
			t.Fatalf("%s: another key", name)
		}
	}
	round, err := PrivateKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParsePrivateKey(round); err != nil || !got.Equal(k) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestPublicKeyForms(t *testing.T) {
	k := mustKey(t, 2048)
	pkix, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pkcs1 := x509.MarshalPKCS1PublicKey(&k.PublicKey)
	b64, _ := PublicKeyBase64(&k.PublicKey)
	p, _ := PublicKeyPEM(&k.PublicKey)
	for name, s := range map[string]string{
		"PKIX PEM":     string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})),
		"PKCS#1 PEM":   string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})),
		"PKIX base64":  b64,
		"PKCS#1 b64":   base64.StdEncoding.EncodeToString(pkcs1),
		"PublicKeyPEM": p,
	} {
		got, err := ParsePublicKey(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Equal(&k.PublicKey) {
			t.Fatalf("%s: another key", name)
		}
	}
}

func TestRefusals(t *testing.T) {
	small := mustKey(t, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec8, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	smallPub, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	k := mustKey(t, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	secretLooking := "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ-not-a-key"
	for name, tc := range map[string]struct {
		private bool
		s, want string
	}{
		"empty":             {true, "", "empty"},
		"garbage":           {true, secretLooking, "not an RSA private key"},
		"not base64":        {true, "!!!", "neither PEM nor base64"},
		"bad PEM":           {true, "-----BEGIN PRIVATE KEY-----\nxx", "malformed PEM"},
		"public as private": {true, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallPub})), "PEM block of type"},
		"1024 bits":         {true, base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(small)), "1024 bits"},
		"EC private":        {true, base64.StdEncoding.EncodeToString(ec8), "not an RSA key"},
		"EC public":         {false, base64.StdEncoding.EncodeToString(ecPub), "not an RSA key"},
		"1024 public":       {false, base64.StdEncoding.EncodeToString(smallPub), "1024 bits"},
		"certificate":       {false, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})), "certificate mode"},
		"private as public": {false, base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(k)), "not an RSA public key"},
	} {
		var err error
		if tc.private {
			_, err = ParsePrivateKey(tc.s)
		} else {
			_, err = ParsePublicKey(tc.s)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want %q", name, err, tc.want)
		}
		if strings.Contains(err.Error(), "MIIE") {
			t.Fatalf("%s: the error quotes the key", name)
		}
	}
}

func TestAESKey(t *testing.T) {
	if k, err := ParseAESKey(base64.StdEncoding.EncodeToString(make([]byte, 16))); err != nil || len(k) != 16 {
		t.Fatalf("16 bytes: %v", err)
	}
	for _, s := range []string{"", "!!", base64.StdEncoding.EncodeToString(make([]byte, 15))} {
		if _, err := ParseAESKey(s); err == nil {
			t.Fatalf("%q accepted", s)
		}
	}
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s
}
