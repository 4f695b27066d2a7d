// Package rsakey reads and writes the keys of Alipay's RSA2 gateway: RSA
// private keys (PKCS#1 or PKCS#8) and public keys (PKIX or PKCS#1), as PEM
// or as the bare base64 DER that Alipay's console and key tool hand out, and
// the AES key of its encrypted data. Errors say what is wrong without ever
// quoting key material.
package rsakey

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MinBits is the smallest RSA key accepted: RSA2 means 2048 bits or more.
const MinBits = 2048

// ParsePrivateKey reads an RSA private key: PEM ("RSA PRIVATE KEY" or
// "PRIVATE KEY") or base64 DER, PKCS#1 or PKCS#8.
func ParsePrivateKey(s string) (*rsa.PrivateKey, error) {
	der, err := decode(s, "RSA PRIVATE KEY", "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("the PKCS#8 key is not an RSA key")
		}
		key = rk
	} else if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		key = k
	} else {
		return nil, errors.New("not an RSA private key in PKCS#1 or PKCS#8")
	}
	if err := key.Validate(); err != nil {
		return nil, errors.New("the RSA private key is inconsistent")
	}
	if key.N.BitLen() < MinBits {
		return nil, fmt.Errorf("the RSA key has %d bits; RSA2 needs at least %d", key.N.BitLen(), MinBits)
	}
	return key, nil
}

// ParsePublicKey reads an RSA public key: PEM ("PUBLIC KEY" or "RSA PUBLIC
// KEY") or base64 DER, PKIX or PKCS#1. Certificates are refused: the
// certificate mode of Alipay's gateway is not supported.
func ParsePublicKey(s string) (*rsa.PublicKey, error) {
	der, err := decode(s, "PUBLIC KEY", "RSA PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	var key *rsa.PublicKey
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("the public key is not an RSA key")
		}
		key = rk
	} else if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		key = k
	} else if _, cerr := x509.ParseCertificate(der); cerr == nil {
		return nil, errors.New("a certificate, not a public key: Alipay's certificate mode is not supported, give the Alipay public key")
	} else {
		return nil, errors.New("not an RSA public key in PKIX or PKCS#1")
	}
	if key.N.BitLen() < MinBits {
		return nil, fmt.Errorf("the RSA key has %d bits; RSA2 needs at least %d", key.N.BitLen(), MinBits)
	}
	return key, nil
}

// decode returns the DER of a PEM block of one of the types, or of bare
// base64 (standard or URL alphabet, line breaks and spaces ignored).
func decode(s string, types ...string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty")
	}
	if strings.HasPrefix(s, "-----BEGIN ") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, errors.New("malformed PEM")
		}
		for _, t := range types {
			if block.Type == t {
				return block.Bytes, nil
			}
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil // refused with a clear message by the caller
		}
		return nil, fmt.Errorf("a PEM block of type %q, want %s", block.Type, strings.Join(types, " or "))
	}
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\n', '\r', '\t':
			return -1
		}
		return r
	}, s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err := enc.DecodeString(clean); err == nil {
			return der, nil
		}
	}
	return nil, errors.New("neither PEM nor base64 DER")
}

// ParseAESKey reads an AES key given in base64 (Alipay's console shows
// 16 bytes, i.e. 24 characters): 16, 24 or 32 bytes.
func ParseAESKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not standard base64")
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("%d bytes; an AES key has 16, 24 or 32", len(k))
}

// Generate makes a new 2048-bit RSA key.
func Generate() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, MinBits) }

// PrivateKeyPEM encodes key as a PKCS#8 PEM block.
func PrivateKeyPEM(key *rsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// PublicKeyPEM encodes key as a PKIX ("PUBLIC KEY") PEM block.
func PublicKeyPEM(key *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// PublicKeyBase64 encodes key as bare base64 PKIX DER, the way Alipay's
// console shows public keys.
func PublicKeyBase64(key *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(der), nil
}
