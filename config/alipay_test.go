package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/rsakey"
)

func TestAlipayDevelopmentKeys(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"APP_DATA_DIR": dir, "APP_APPS": `[{"platform":"alipay","appid":"2021000000000001"},{"platform":"alipay","appid":"2021000000000002"}]`}
	a, err := load(t, vars)
	require.NoError(t, err)
	app := a.Apps[0]
	priv, err := rsakey.ParsePrivateKey(app.PrivateKey)
	require.NoError(t, err)
	pub, err := rsakey.ParsePublicKey(app.AlipayPublicKey)
	require.NoError(t, err)
	require.False(t, priv.PublicKey.Equal(pub), "the app key and the emulator's Alipay key are two pairs")
	_, err = rsakey.ParseAESKey(app.AESKey)
	require.NoError(t, err)
	require.Equal(t, app.PrivateKey, a.Apps[1].PrivateKey, "one development key for every app")

	emu, err := a.AlipayEmulatorKey()
	require.NoError(t, err)
	emuKey, err := rsakey.ParsePrivateKey(emu)
	require.NoError(t, err)
	require.True(t, emuKey.PublicKey.Equal(pub), "the apps trust the emulator's key")

	b, err := load(t, vars)
	require.NoError(t, err)
	require.Equal(t, a.Apps, b.Apps, "the keys are kept across restarts")
	for _, f := range []string{"alipay_dev_app_key", "alipay_emulator_key", "alipay_dev_aes_key"} {
		info, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	}
	require.Contains(t, strings.Join(a.Warnings, "\n"), "private_key is not set")
	require.Contains(t, strings.Join(a.Warnings, "\n"), "alipay_public_key is not set")
}

func TestAlipayKeysGivenAsBase64DER(t *testing.T) {
	key, err := rsakey.Generate()
	require.NoError(t, err)
	pub, err := rsakey.PublicKeyBase64(&key.PublicKey)
	require.NoError(t, err)
	privPEM, err := rsakey.PrivateKeyPEM(key)
	require.NoError(t, err)
	// What Alipay's key tool gives: the PEM body without its armour.
	privB64 := strings.Join(strings.Split(strings.TrimSpace(privPEM), "\n")[1:len(strings.Split(strings.TrimSpace(privPEM), "\n"))-1], "")
	apps, _ := json.Marshal([]map[string]string{{"platform": "alipay", "appid": "2021", "private_key": privB64, "alipay_public_key": pub, "aes_key": "AAAAAAAAAAAAAAAAAAAAAA=="}})
	cfg, err := load(t, map[string]string{"APP_ENV": "production", "APP_TOKEN_SECRET": strings.Repeat("s", 40), "APP_APPS": string(apps)})
	require.NoError(t, err)
	require.Equal(t, privB64, cfg.Apps[0].PrivateKey, "kept as given")
}

func TestAlipayKeysRefused(t *testing.T) {
	base := map[string]string{"APP_ENV": "production", "APP_TOKEN_SECRET": strings.Repeat("s", 40)}
	cases := map[string]struct{ apps, want string }{
		"no keys":         {`[{"platform":"alipay","appid":"2021"}]`, "APP_APPS[0] (2021): private_key is required"},
		"no public key":   {`[{"platform":"alipay","appid":"2021"}]`, "alipay_public_key is required"},
		"bad private key": {`[{"platform":"alipay","appid":"2021","private_key":"TOPSECRETKEYMATERIAL","alipay_public_key":"x"}]`, "private_key: not an RSA private key"},
		"bad public key":  {`[{"platform":"alipay","appid":"2021","alipay_public_key":"@@@"}]`, "alipay_public_key: neither PEM nor base64"},
		"bad AES key":     {`[{"platform":"alipay","appid":"2021","aes_key":"QUFB"}]`, "aes_key (the console's AES key, base64): 3 bytes"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			vars := map[string]string{"APP_APPS": c.apps}
			for k, v := range base {
				vars[k] = v
			}
			_, err := load(t, vars)
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "TOPSECRETKEYMATERIAL")
		})
	}
	// Development fills what is missing but still refuses what is wrong.
	_, err := load(t, map[string]string{"APP_APPS": `[{"platform":"alipay","appid":"2021","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}]`})
	require.ErrorContains(t, err, "private_key")
	var cerr *config.Error
	require.ErrorAs(t, err, &cerr)
}
