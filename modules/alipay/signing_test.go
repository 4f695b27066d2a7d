package alipay_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/rsakey"
	"github.com/wxlogin/wxlogin/modules/alipay"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// The known-good vectors of testdata/: signing strings written by hand and
// signatures made by OpenSSL with the test key.
func TestSigningMatchesOpenSSLVectors(t *testing.T) {
	key, err := rsakey.ParsePrivateKey(readTestdata(t, "app_private_pkcs1.pem"))
	require.NoError(t, err)
	vectors := map[string]url.Values{
		"oauth_token": {
			"app_id": {"2021000000000001"}, "method": {"alipay.system.oauth.token"}, "format": {"JSON"}, "charset": {"utf-8"},
			"sign_type": {"RSA2"}, "timestamp": {"2024-05-01 18:00:00"}, "version": {"1.0"},
			"grant_type": {"authorization_code"}, "code": {"4b203fe6c11548bcabd8da5bb087a83b"},
			"app_auth_token": {""}, // empty: not signed
		},
		"biz_content": {
			"app_id": {"2021000000000001"}, "method": {"alipay.user.info.share"}, "format": {"JSON"}, "charset": {"utf-8"},
			"sign_type": {"RSA2"}, "timestamp": {"2024-05-01 18:00:00"}, "version": {"1.0"},
			"biz_content": {`{"note":"a&b=c d+e/f","scene":"测试"}`}, // raw, not URL-encoded
			"sign":        {"an old signature is never signed"},
		},
	}
	for name, params := range vectors {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, readTestdata(t, name+".txt"), alipay.SigningString(params))
			sig, err := alipay.Sign(key, params)
			require.NoError(t, err)
			assert.Equal(t, readTestdata(t, name+".sig"), sig, "PKCS#1 v1.5 signatures are deterministic: OpenSSL's")
		})
	}
}

// A request the client signs verifies under Go's crypto/rsa and OpenSSL,
// over a signing string built here by hand.
func TestClientRequestVerifiesWithStandardLibraries(t *testing.T) {
	pub, err := rsakey.ParsePublicKey(readTestdata(t, "app_public.pem"))
	require.NoError(t, err)
	c, err := alipay.NewClient(config.Apps{{Platform: "alipay", AppID: "2021000000000001",
		PrivateKey: readTestdata(t, "app_private_pkcs1.pem"), AlipayPublicKey: readTestdata(t, "app_public.pem")}},
		alipay.WithClock(func() time.Time { return time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC) }))
	require.NoError(t, err)
	form, err := c.SignedParams("2021000000000001", alipay.MethodOAuthToken,
		url.Values{"grant_type": {"authorization_code"}, "code": {"4b203fe6c11548bcabd8da5bb087a83b"}})
	require.NoError(t, err)
	assert.Equal(t, "2024-05-01 18:00:00", form.Get("timestamp"), "Beijing time [U]")

	// Built by hand: the documented rule, not alipay.SigningString.
	content := "app_id=" + form.Get("app_id") + "&charset=" + form.Get("charset") + "&code=" + form.Get("code") +
		"&format=" + form.Get("format") + "&grant_type=" + form.Get("grant_type") + "&method=" + form.Get("method") +
		"&sign_type=" + form.Get("sign_type") + "&timestamp=" + form.Get("timestamp") + "&version=" + form.Get("version")
	assert.Equal(t, readTestdata(t, "oauth_token.txt"), content)
	sig, err := base64.StdEncoding.DecodeString(form.Get("sign"))
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(content))
	require.NoError(t, rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig), "crypto/rsa verifies")
	assert.Equal(t, readTestdata(t, "oauth_token.sig"), form.Get("sign"))

	t.Run("openssl dgst -verify", func(t *testing.T) {
		openssl, err := exec.LookPath("openssl")
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("openssl is required under CI")
			}
			t.Skip("openssl not installed")
		}
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "content"), []byte(content), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "sig"), sig, 0o600))
		out, err := exec.CommandContext(context.Background(), openssl, "dgst", "-sha256", "-verify", filepath.Join("testdata", "app_public.pem"),
			"-signature", filepath.Join(dir, "sig"), filepath.Join(dir, "content")).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "Verified OK")
		// And it refuses a tampered request.
		require.NoError(t, os.WriteFile(filepath.Join(dir, "content"), []byte(strings.Replace(content, "4b20", "4b21", 1)), 0o600))
		out, err = exec.CommandContext(context.Background(), openssl, "dgst", "-sha256", "-verify", filepath.Join("testdata", "app_public.pem"),
			"-signature", filepath.Join(dir, "sig"), filepath.Join(dir, "content")).CombinedOutput()
		assert.Error(t, err, "%s", out)
	})
}

func TestPKCS8AndBase64KeysSignTheSame(t *testing.T) {
	key, err := rsakey.ParsePrivateKey(readTestdata(t, "app_private_pkcs1.pem"))
	require.NoError(t, err)
	pkcs8, err := rsakey.PrivateKeyPEM(key)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(pkcs8), "\n")
	bare := strings.Join(lines[1:len(lines)-1], "")
	pub, err := rsakey.PublicKeyBase64(&key.PublicKey)
	require.NoError(t, err)
	for _, priv := range []string{pkcs8, bare} {
		c, err := alipay.NewClient(config.Apps{{Platform: "alipay", AppID: "2021000000000001", PrivateKey: priv, AlipayPublicKey: pub}},
			alipay.WithClock(func() time.Time { return time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC) }))
		require.NoError(t, err)
		form, err := c.SignedParams("2021000000000001", alipay.MethodOAuthToken,
			url.Values{"grant_type": {"authorization_code"}, "code": {"4b203fe6c11548bcabd8da5bb087a83b"}})
		require.NoError(t, err)
		assert.Equal(t, readTestdata(t, "oauth_token.sig"), form.Get("sign"))
	}
}
