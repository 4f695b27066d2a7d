package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
)

// load reads a configuration from vars only, with a private data dir.
func load(t *testing.T, vars map[string]string) (*config.Config, error) {
	t.Helper()
	env := map[string]string{"APP_DATA_DIR": t.TempDir()}
	for k, v := range vars {
		env[k] = v
	}
	return config.LoadFrom(func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
}

func TestDevelopmentDefaults(t *testing.T) {
	cfg, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, config.Development, cfg.Env)
	require.Equal(t, "127.0.0.1:8080", cfg.HTTP.Addr)
	require.Equal(t, "sqlite", cfg.Database.Driver)
	require.Contains(t, cfg.Database.DSN, "wxlogin.db")
	require.True(t, cfg.Database.AutoMigrate)
	require.True(t, cfg.WeChat.Emulator)
	require.Equal(t, "http://127.0.0.1:8081", cfg.WeChat.BaseURL, "the client points at the emulator")
	require.Equal(t, config.DevAppID, cfg.WeChat.AppID)
	require.Equal(t, "jwt", cfg.Token.Strategy)
	require.Equal(t, 2*time.Hour, cfg.Token.TTL)
	require.True(t, cfg.WeChat.StableToken)
	require.GreaterOrEqual(t, len(cfg.Token.Secret), config.MinSecretBytes)
	require.NotEmpty(t, cfg.Warnings, "a generated secret is announced")
}

func TestGeneratedSecretIsKept(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"APP_DATA_DIR": dir}
	a, err := load(t, vars)
	require.NoError(t, err)
	b, err := load(t, vars)
	require.NoError(t, err)
	require.Equal(t, a.Token.Secret, b.Token.Secret, "tokens survive a restart")
	info, err := os.Stat(filepath.Join(dir, "token_secret"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestEnvironmentOverrides(t *testing.T) {
	cfg, err := load(t, map[string]string{
		"APP_HTTP_ADDR":            "0.0.0.0:9000",
		"APP_DATABASE_DRIVER":      "mysql",
		"APP_DATABASE_DSN":         "root@tcp(127.0.0.1:3306)/app?parseTime=true",
		"APP_WECHAT_APPID":         "wxabc",
		"APP_WECHAT_SECRET":        "s",
		"APP_WECHAT_EMULATOR":      "false",
		"APP_WECHAT_BASEURL":       "https://api.example.com/",
		"APP_WECHAT_EMULATOR_ADDR": "127.0.0.1:9999",
		"APP_WECHAT_STABLETOKEN":   "false",
		"APP_TOKEN_STRATEGY":       "db",
		"APP_TOKEN_SECRET":         strings.Repeat("s", 40),
		"APP_TOKEN_TTL":            "15m",
	})
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9000", cfg.HTTP.Addr)
	require.Equal(t, "mysql", cfg.Database.Driver)
	require.Equal(t, "wxabc", cfg.WeChat.AppID)
	require.False(t, cfg.WeChat.Emulator)
	require.Equal(t, "https://api.example.com", cfg.WeChat.BaseURL)
	require.Equal(t, "127.0.0.1:9999", cfg.WeChat.EmulatorAddr)
	require.False(t, cfg.WeChat.StableToken)
	require.Equal(t, "db", cfg.Token.Strategy)
	require.Equal(t, 15*time.Minute, cfg.Token.TTL)
}

func TestYAMLFileUnderEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("http:\n  addr: 127.0.0.1:7000\ntoken:\n  strategy: db\n  ttl: 1h\n"), 0o600))
	cfg, err := load(t, map[string]string{"APP_CONFIG": path, "APP_TOKEN_TTL": "30m"})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7000", cfg.HTTP.Addr)
	require.Equal(t, "db", cfg.Token.Strategy)
	require.Equal(t, 30*time.Minute, cfg.Token.TTL, "environment wins over the file")

	_, err = load(t, map[string]string{"APP_CONFIG": filepath.Join(t.TempDir(), "missing.yaml")})
	require.ErrorContains(t, err, "APP_CONFIG")
}

func TestProductionRefusesEverythingWrongAtOnce(t *testing.T) {
	_, err := load(t, map[string]string{
		"APP_ENV":             "production",
		"APP_WECHAT_EMULATOR": "true",
		"APP_TOKEN_SECRET":    "short",
	})
	var cerr *config.Error
	require.ErrorAs(t, err, &cerr)
	msg := err.Error()
	for _, want := range []string{"APP_WECHAT_APPID", "APP_WECHAT_SECRET", "APP_WECHAT_EMULATOR", "APP_TOKEN_SECRET"} {
		require.Contains(t, msg, want)
	}
	require.NotContains(t, msg, "short", "the secret's value is never echoed")
}

func TestProductionMissingSecret(t *testing.T) {
	_, err := load(t, map[string]string{
		"APP_ENV": "production", "APP_WECHAT_APPID": "wx1", "APP_WECHAT_SECRET": "s",
	})
	require.ErrorContains(t, err, "APP_TOKEN_SECRET is required")
}

func TestProductionAcceptsACompleteConfig(t *testing.T) {
	cfg, err := load(t, map[string]string{
		"APP_ENV": "production", "APP_WECHAT_APPID": "wx1", "APP_WECHAT_SECRET": "s",
		"APP_TOKEN_SECRET": strings.Repeat("x", 32),
	})
	require.NoError(t, err)
	require.False(t, cfg.WeChat.Emulator, "emulator off by default in production")
	require.False(t, cfg.Database.AutoMigrate)
	require.Equal(t, "https://api.weixin.qq.com", cfg.WeChat.BaseURL)
}

func TestInvalidValues(t *testing.T) {
	cases := map[string]map[string]string{
		"APP_TOKEN_STRATEGY":  {"APP_TOKEN_STRATEGY": "cookie"},
		"APP_DATABASE_DRIVER": {"APP_DATABASE_DRIVER": "oracle"},
		"APP_REDIS_ADDR":      {"APP_TOKEN_STRATEGY": "redis"},
		"APP_TOKEN_JWT_ALG":   {"APP_TOKEN_JWT_ALG": "RS256"},
		"APP_ENV":             {"APP_ENV": "staging"},
		"wrong type":          {"APP_TOKEN_TTL": "two hours"},
		"APP_TOKEN_JWT_KEYS":  {"APP_TOKEN_JWT_ALG": "EdDSA", "APP_TOKEN_JWT_KEYS": "k1:not-base64!"},
		"APP_ADMIN_TOKEN":     {"APP_ADMIN_TOKEN": "too-short-for-an-admin"},
		"push_aes_key is not": {"APP_APPS": `[{"appid":"wxA","secret":"s","push_token":"t","push_aes_key":"` + strings.Repeat("!", 43) + `"}]`},
	}
	for want, vars := range cases {
		t.Run(want, func(t *testing.T) {
			_, err := load(t, vars)
			require.ErrorContains(t, err, want)
		})
	}
}

func TestEdDSAKeys(t *testing.T) {
	cfg, err := load(t, map[string]string{"APP_TOKEN_JWT_ALG": "EdDSA"})
	require.NoError(t, err)
	keys, err := cfg.Token.Ed25519Keys()
	require.NoError(t, err)
	require.Len(t, keys, 1, "development generates one key")

	k1, err := config.NewJWTKey("2026-11")
	require.NoError(t, err)
	k2, err := config.NewJWTKey("2026-05")
	require.NoError(t, err)
	cfg, err = load(t, map[string]string{"APP_TOKEN_JWT_ALG": "EdDSA", "APP_TOKEN_JWT_KEYS": k1 + "," + k2})
	require.NoError(t, err)
	keys, err = cfg.Token.Ed25519Keys()
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11", "2026-05"}, []string{keys[0].ID, keys[1].ID})

	_, err = load(t, map[string]string{"APP_ENV": "production", "APP_WECHAT_APPID": "wx1", "APP_WECHAT_SECRET": "s",
		"APP_TOKEN_SECRET": strings.Repeat("x", 32), "APP_TOKEN_JWT_ALG": "EdDSA"})
	require.ErrorContains(t, err, "APP_TOKEN_JWT_KEYS is required")
}

// TestPostgresDriver: postgres is accepted with a DSN and refused without one.
func TestPostgresDriver(t *testing.T) {
	dsn := "postgres://root@127.0.0.1:5432/app?sslmode=disable"
	cfg, err := load(t, map[string]string{"APP_DATABASE_DRIVER": "postgres", "APP_DATABASE_DSN": dsn})
	require.NoError(t, err)
	require.Equal(t, "postgres", cfg.Database.Driver)
	require.Equal(t, dsn, cfg.Database.DSN)

	_, err = load(t, map[string]string{"APP_DATABASE_DRIVER": "postgres"})
	require.ErrorContains(t, err, "APP_DATABASE_DSN is required with APP_DATABASE_DRIVER=postgres (e.g. postgres://")
	_, err = load(t, map[string]string{"APP_DATABASE_DRIVER": "oracle"})
	require.ErrorContains(t, err, "APP_DATABASE_DRIVER must be sqlite, mysql or postgres")
}

// TestEveryVariableIsDocumented keeps the README's table true.
func TestEveryVariableIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	for _, v := range config.Vars {
		if !strings.Contains(string(readme), "| `"+v.Name+"` |") {
			t.Errorf("README's configuration table must document %s", v.Name)
		}
	}
}

func TestAppsDefaultToOneDevelopmentApp(t *testing.T) {
	cfg, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, config.Apps{{Platform: "wechat", AppID: config.DevAppID, Secret: config.DevSecret, Kind: "miniprogram"}}, cfg.Apps)
}

func TestAppsFromJSON(t *testing.T) {
	cfg, err := load(t, map[string]string{
		"APP_APPS": `[{"appid":"wxA","secret":"sa"},{"appid":"wxB","secret":"sb","kind":"OAuth"},{"platform":"qq","appid":"1101","secret":"sq"}]`,
	})
	require.NoError(t, err)
	require.Len(t, cfg.Apps, 3)
	require.Equal(t, config.App{Platform: "wechat", AppID: "wxA", Secret: "sa", Kind: "miniprogram"}, cfg.Apps[0])
	require.Equal(t, "oauth", cfg.Apps[1].Kind, "kinds are case-insensitive")
	require.Equal(t, "qq", cfg.Apps[2].Platform)
	a, ok := cfg.Apps.Find("wxB")
	require.True(t, ok)
	require.Equal(t, "sb", a.Secret)
	require.Len(t, cfg.Apps.Of("wechat"), 2)
	require.Equal(t, "wxA", cfg.WeChat.AppID, "the first WeChat mini program is the single-app default")
}

func TestSingleAppVariablesJoinTheList(t *testing.T) {
	cfg, err := load(t, map[string]string{
		"APP_WECHAT_APPID":  "wxSingle",
		"APP_WECHAT_SECRET": "s1",
		"APP_APPS":          `[{"appid":"wxB","secret":"sb","kind":"oauth"}]`,
	})
	require.NoError(t, err)
	require.Equal(t, []string{"wxSingle", "wxB"}, []string{cfg.Apps[0].AppID, cfg.Apps[1].AppID})
	require.Equal(t, "miniprogram", cfg.Apps[0].Kind)
}

func TestAppsFromYAML(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("apps:\n  - appid: wxY\n    secret: sy\n  - appid: wxZ\n    secret: sz\n    kind: oauth\n"), 0o600))
	cfg, err := load(t, map[string]string{"APP_CONFIG": path})
	require.NoError(t, err)
	require.Len(t, cfg.Apps, 2)
	require.Equal(t, "oauth", cfg.Apps[1].Kind)
}

func TestAppsRefused(t *testing.T) {
	base := map[string]string{"APP_ENV": "production", "APP_WECHAT_EMULATOR": "false", "APP_TOKEN_SECRET": strings.Repeat("s", 40)}
	cases := map[string]struct{ apps, want string }{
		"not JSON":         {`[{"appid":`, "APP_APPS must be a JSON list"},
		"unknown field":    {`[{"appid":"wxA","secret":"s","colour":"red"}]`, `unknown field "colour"`},
		"no secret":        {`[{"appid":"wxA"}]`, "APP_APPS[0] (wxA): secret is required in production"},
		"duplicate appid":  {`[{"appid":"wxA","secret":"s"},{"appid":"wxA","secret":"t"}]`, "listed twice"},
		"bad kind":         {`[{"appid":"wxA","secret":"s","kind":"web"}]`, `kind must be "miniprogram" or "oauth"`},
		"oauth off WeChat": {`[{"platform":"qq","appid":"1","secret":"s","kind":"oauth"}]`, "exists on WeChat only"},
		"bad platform":     {`[{"platform":"line","appid":"1","secret":"s"}]`, "platform must be one of"},
		"no appid":         {`[{"secret":"s"}]`, "appid is required"},
		"empty list":       {`[]`, "no app is configured"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			vars := map[string]string{"APP_APPS": c.apps}
			for k, v := range base {
				vars[k] = v
			}
			_, err := load(t, vars)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
			require.NotContains(t, err.Error(), `"s"`, "secrets are not quoted back")
		})
	}
}

func TestAdminToken(t *testing.T) {
	cfg, err := load(t, map[string]string{})
	require.NoError(t, err)
	require.False(t, cfg.Admin.Enabled(), "no admin API unless configured")
	token := strings.Repeat("admin-token-", 4)
	cfg, err = load(t, map[string]string{"APP_ADMIN_TOKEN": token})
	require.NoError(t, err)
	require.True(t, cfg.Admin.Enabled())
	for _, s := range []string{fmt.Sprint(cfg.Admin), fmt.Sprintf("%#v", cfg.Admin), fmt.Sprintf("%+v", cfg.Admin)} {
		require.NotContains(t, s, token)
	}
}

func TestAppPrintsWithoutSecrets(t *testing.T) {
	a := config.App{AppID: "wxA", Secret: "TOP-SECRET", PrivateKey: "PRIVATE", PushAESKey: "AESKEY"}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprint(config.Apps{a}), fmt.Sprintf("%+v", config.Config{Apps: config.Apps{a}})} {
		require.NotContains(t, s, "TOP-SECRET")
		require.NotContains(t, s, "PRIVATE")
		require.NotContains(t, s, "AESKEY")
	}
}

func TestProductionPlatformsOverTLSOnly(t *testing.T) {
	base := map[string]string{"APP_ENV": "production", "APP_WECHAT_APPID": "wx1", "APP_WECHAT_SECRET": "s",
		"APP_TOKEN_SECRET": strings.Repeat("x", 32)}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}
	_, err := load(t, with("APP_WECHAT_BASEURL", "http://wechat-proxy.internal"))
	require.ErrorContains(t, err, "APP_WECHAT_BASEURL must be an https URL in production")
	_, err = load(t, with("APP_APPS", `[{"platform":"qq","appid":"1101","secret":"s","base_url":"http://qq-proxy.internal"}]`))
	require.ErrorContains(t, err, "base_url must be an https URL in production")
	_, err = load(t, with("APP_WECHAT_BASEURL", "https://wechat-proxy.internal"))
	require.NoError(t, err)
	// Development may point at a local proxy or emulator.
	_, err = load(t, map[string]string{"APP_WECHAT_EMULATOR": "false", "APP_WECHAT_BASEURL": "http://127.0.0.1:9"})
	require.NoError(t, err)
}

func TestAudienceDefaultsToIssuer(t *testing.T) {
	cfg, err := load(t, map[string]string{"APP_TOKEN_ISSUER": "https://login.example.com"})
	require.NoError(t, err)
	require.Equal(t, "https://login.example.com", cfg.Token.Audience)
	cfg, err = load(t, map[string]string{"APP_TOKEN_AUDIENCE": "orders"})
	require.NoError(t, err)
	require.Equal(t, "orders", cfg.Token.JWTAudience())
}
