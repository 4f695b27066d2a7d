package config

import (
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"strings"

	"github.com/wxlogin/wxlogin/internal/rsakey"
)

// Files in DataDir that keep the Alipay development material.
const (
	// alipayDevAppKey is the app's RSA2 private key of every Alipay app
	// configured without private_key in development.
	alipayDevAppKey = "alipay_dev_app_key"
	// alipayEmulatorKey is the emulator's "Alipay" private key; its public
	// key is the alipay_public_key of every Alipay app configured without one.
	alipayEmulatorKey = "alipay_emulator_key"
	// alipayDevAESKey is the AES key of apps configured without aes_key.
	alipayDevAESKey = "alipay_dev_aes_key"
)

// completeAlipay fills and checks an Alipay app's keys (others are left
// alone). In development, missing keys get development material kept in
// DataDir — the app key, the emulator's Alipay key pair and an AES key — so
// the client and the emulator agree without configuration, as WeChat's
// development secret does. In production private_key and alipay_public_key
// are required. Every key is parsed so a bad one stops the start.
func (c *Config) completeAlipay(a *App, name string, bad func(string, ...any)) {
	if a.Platform != PlatformAlipay {
		return
	}
	if c.Env == Development {
		c.alipayDevKeys(a, name, bad)
	}
	if a.PrivateKey == "" {
		bad("%s: private_key is required: the app's RSA2 private key (PEM or base64 DER, PKCS#1 or PKCS#8)", name)
	} else if _, err := rsakey.ParsePrivateKey(a.PrivateKey); err != nil {
		bad("%s: private_key: %v", name, err)
	}
	if a.AlipayPublicKey == "" {
		bad("%s: alipay_public_key is required: the Alipay public key of the app (PEM or base64 DER)", name)
	} else if _, err := rsakey.ParsePublicKey(a.AlipayPublicKey); err != nil {
		bad("%s: alipay_public_key: %v", name, err)
	}
	if a.AESKey != "" {
		if _, err := rsakey.ParseAESKey(a.AESKey); err != nil {
			bad("%s: aes_key (the console's AES key, base64): %v", name, err)
		}
	}
}

// alipayDevKeys gives a development Alipay app the keys it lacks.
func (c *Config) alipayDevKeys(a *App, name string, bad func(string, ...any)) {
	if a.PrivateKey == "" {
		key, err := c.devMaterial(alipayDevAppKey, newRSAKeyPEM)
		if err != nil {
			bad("%s: cannot keep a generated Alipay app key in %s: %v", name, c.DataDir, err)
			return
		}
		a.PrivateKey = key
		c.Warnings = append(c.Warnings, name+": private_key is not set: using a generated development key kept in "+
			filepath.Join(c.DataDir, alipayDevAppKey)+" (the Alipay emulator verifies with it)")
	}
	if a.AlipayPublicKey == "" {
		pub, err := c.alipayEmulatorPublicKey()
		if err != nil {
			bad("%s: cannot keep the Alipay emulator's key in %s: %v", name, c.DataDir, err)
			return
		}
		a.AlipayPublicKey = pub
		c.Warnings = append(c.Warnings, name+": alipay_public_key is not set: trusting the Alipay emulator's development key kept in "+
			filepath.Join(c.DataDir, alipayEmulatorKey))
	}
	if a.AESKey == "" {
		key, err := c.devMaterial(alipayDevAESKey, func() (string, error) {
			b := make([]byte, 16)
			if _, err := rand.Read(b); err != nil {
				return "", err
			}
			return base64.StdEncoding.EncodeToString(b), nil
		})
		if err != nil {
			bad("%s: cannot keep a generated AES key in %s: %v", name, c.DataDir, err)
			return
		}
		a.AESKey = key
	}
}

// AlipayEmulatorKey returns the Alipay emulator's private key (PKCS#8 PEM),
// generating it into DataDir the first time. Development only: the
// emulator signs its answers with it, and Alipay apps configured without
// alipay_public_key trust its public key.
func (c *Config) AlipayEmulatorKey() (string, error) {
	return c.devMaterial(alipayEmulatorKey, newRSAKeyPEM)
}

func (c *Config) alipayEmulatorPublicKey() (string, error) {
	s, err := c.AlipayEmulatorKey()
	if err != nil {
		return "", err
	}
	key, err := rsakey.ParsePrivateKey(s)
	if err != nil {
		return "", err
	}
	return rsakey.PublicKeyPEM(&key.PublicKey)
}

func newRSAKeyPEM() (string, error) {
	key, err := rsakey.Generate()
	if err != nil {
		return "", err
	}
	pem, err := rsakey.PrivateKeyPEM(key)
	// devMaterial hands back what it reads trimmed: be the same the first time.
	return strings.TrimSpace(pem), err
}
