package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
)

func TestRateLimitSettings(t *testing.T) {
	cfg, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, config.Rate{N: 60, Per: 10 * time.Minute}, cfg.RateLimit.LoginFailures)
	require.Equal(t, config.Rate{N: 30000, Per: time.Minute}, cfg.RateLimit.PlatformCalls)
	require.Equal(t, 65536, cfg.HTTP.BodyLimit)
	require.Equal(t, "X-Forwarded-For", cfg.HTTP.ProxyHeader)

	cfg, err = load(t, map[string]string{
		"APP_RATELIMIT_LOGIN_FAILURES": "10/1m", "APP_RATELIMIT_AVATAR_UPLOADS": "off",
		"APP_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1 ,::1",
	})
	require.NoError(t, err)
	require.Equal(t, config.Rate{N: 10, Per: time.Minute}, cfg.RateLimit.LoginFailures)
	require.True(t, cfg.RateLimit.AvatarUploads.Off())
	prefixes, err := cfg.HTTP.TrustedProxyPrefixes()
	require.NoError(t, err)
	require.Len(t, prefixes, 3)

	for name, value := range map[string]string{
		"APP_RATELIMIT_REFRESH":    "often",
		"APP_RATELIMIT_OPEN_DATA":  "5/soon",
		"APP_HTTP_TRUSTED_PROXIES": "proxy.internal",
	} {
		_, err := load(t, map[string]string{name: value})
		require.Error(t, err, name)
		require.Contains(t, err.Error(), map[string]string{
			"APP_RATELIMIT_REFRESH": "ratelimit.refresh", "APP_RATELIMIT_OPEN_DATA": "ratelimit.open_data",
			"APP_HTTP_TRUSTED_PROXIES": "APP_HTTP_TRUSTED_PROXIES",
		}[name])
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]config.Rate{
		"60/10m": {N: 60, Per: 10 * time.Minute}, " 5 / 1h ": {N: 5, Per: time.Hour}, "off": {}, "OFF": {}, "0": {}, "": {},
	} {
		got, err := config.ParseRate(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"5", "-1/1m", "5/0s", "x/1m", "5/1", "10000000/1ms"} {
		_, err := config.ParseRate(in)
		require.Error(t, err, in)
	}
	require.Equal(t, "60/10m0s", config.Rate{N: 60, Per: 10 * time.Minute}.String())
	require.Equal(t, 10*time.Second, config.Rate{N: 60, Per: 10 * time.Minute}.Interval())
}
