// Package config is the one typed configuration of a wxlogin service.
//
// It is read, in increasing priority, from built-in defaults, an optional YAML
// file (config/config.yaml, or the file named by APP_CONFIG) and the APP_*
// environment variables listed in [Vars]. [Load] validates the result and
// returns one error that lists everything a person must fix.
//
// Every module takes only its own section ([HTTP], [Database], [WeChat],
// [Token], [Redis], [Avatar], [RateLimit], [Admin], [Operator]); [Module] provides them to fx. An application
// that builds its configuration in code supplies it with [Static] instead of
// [Module].
package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/wxlogin/wxlogin/internal/seal"
)

// Environments.
const (
	Development = "development"
	Production  = "production"
)

// DevAppID and DevSecret are the WeChat credentials used in development when
// none are configured; the built-in emulator accepts them.
const (
	DevAppID  = "wx0000000000000dev"
	DevSecret = "dev-secret-accepted-by-the-emulator"
)

// MinSecretBytes is the shortest token secret accepted.
const MinSecretBytes = 32

// Config is the whole configuration.
type Config struct {
	// Env is "development" or "production".
	Env string `koanf:"env"`
	// DataDir holds what development generates (SQLite file, secrets, avatars).
	DataDir  string   `koanf:"data_dir"`
	HTTP     HTTP     `koanf:"http"`
	Database Database `koanf:"database"`
	WeChat   WeChat   `koanf:"wechat"`
	Token    Token    `koanf:"token"`
	Redis    Redis    `koanf:"redis"`
	Avatar   Avatar   `koanf:"avatar"`
	Identity Identity `koanf:"identity"`
	Admin    Admin    `koanf:"admin"`
	// Operator is the operator listener (metrics, pprof).
	Operator Operator `koanf:"operator"`
	// RateLimit holds the abuse limits.
	RateLimit RateLimit `koanf:"ratelimit"`
	// Apps are the apps this deployment serves (APP_APPS, or the YAML list
	// "apps"); APP_WECHAT_APPID/APP_WECHAT_SECRET add one WeChat mini program.
	Apps Apps `koanf:"apps"`

	// Warnings are things a person should know about the loaded
	// configuration; the log module prints them once it is up.
	Warnings []string `koanf:"-"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	// Addr is the listen address, host:port.
	Addr string `koanf:"addr"`
	// PublicURL is how clients reach this server; it prefixes the URLs the
	// server hands out (avatars). Default: http://Addr.
	PublicURL string `koanf:"public_url"`
	// BodyLimit caps request bodies, in bytes, on every route that does not
	// take its own limit (the avatar upload does).
	BodyLimit int `koanf:"body_limit"`
	// TrustedProxies are the addresses (IPs or CIDR prefixes, comma-separated)
	// of the reverse proxies in front of the service: only from them is
	// ProxyHeader believed when finding a client's address.
	TrustedProxies string `koanf:"trusted_proxies"`
	// ProxyHeader carries the client's address through the proxies
	// (default X-Forwarded-For).
	ProxyHeader string `koanf:"proxy_header"`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// RequestTimeout bounds the work of one request (its context's
	// deadline): a dependency that stops answering makes it a 503, not a
	// request that hangs.
	RequestTimeout time.Duration `koanf:"request_timeout"`
}

// TrustedProxyPrefixes parses TrustedProxies.
func (h HTTP) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(h.TrustedProxies, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", item)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Database configures the SQL database behind ent.
type Database struct {
	// Driver is "sqlite", "mysql" (MySQL/MariaDB) or "postgres" (PostgreSQL).
	Driver string `koanf:"driver"`
	// DSN is the driver's data source name.
	DSN string `koanf:"dsn"`
	// AutoMigrate runs the schema migration at start (default: development only).
	AutoMigrate bool `koanf:"auto_migrate"`
}

// WeChat configures the WeChat API client and the built-in emulator.
type WeChat struct {
	AppID  string `koanf:"appid"`
	Secret string `koanf:"secret"`
	// BaseURL is WeChat's API root; the only part of the endpoint that is configurable.
	BaseURL string `koanf:"base_url"`
	// Emulator runs the built-in WeChat emulator in-process and points the client at it.
	Emulator     bool   `koanf:"emulator"`
	EmulatorAddr string `koanf:"emulator_addr"`
	// StableToken fetches access tokens from /cgi-bin/stable_token instead of /cgi-bin/token.
	StableToken bool `koanf:"stable_token"`
	// Timeout bounds every call to WeChat.
	Timeout time.Duration `koanf:"timeout"`
}

// Token configures login tokens.
type Token struct {
	// Strategy is "jwt", "db" or "redis".
	Strategy string `koanf:"strategy"`
	// Secret signs HS256 JWTs and keys the tags of refresh tokens (every strategy).
	Secret string `koanf:"secret"`
	// PreviousSecrets still verify HS256 JWTs signed before a rotation (comma-separated).
	PreviousSecrets string `koanf:"previous_secrets"`
	// TTL is the access token lifetime.
	TTL time.Duration `koanf:"ttl"`
	// RefreshTTL is the refresh token lifetime.
	RefreshTTL time.Duration `koanf:"refresh_ttl"`
	// Issuer is the JWT "iss".
	Issuer string `koanf:"issuer"`
	// Audience is the JWT "aud" put in and required (default: Issuer), so
	// that services sharing keys or a JWKS do not take each other's tokens.
	Audience string `koanf:"audience"`
	// JWTAlg is "HS256" or "EdDSA".
	JWTAlg string `koanf:"jwt_alg"`
	// JWTKeys are the Ed25519 keys, "kid:base64url(seed)" separated by commas;
	// the first signs, all verify.
	JWTKeys string `koanf:"jwt_keys"`
	// CacheSize bounds the in-memory cache of verified tokens; 0 turns it off.
	CacheSize int `koanf:"cache_size"`
	// RevocationPoll is how often an instance looks for revocations made by others
	// when no Redis carries them.
	RevocationPoll time.Duration `koanf:"revocation_poll"`
	// CleanupInterval is how often expired tokens and deny-list entries are deleted.
	CleanupInterval time.Duration `koanf:"cleanup_interval"`
	// RefreshIdle ends a session whose refresh token is not used for this
	// long; 0 turns it off. With it on, RefreshTTL counts from the login
	// (the absolute bound) instead of from the last refresh.
	RefreshIdle time.Duration `koanf:"refresh_idle"`
	// RefreshGrace is how long the refresh token a refresh just replaced is
	// still accepted (concurrent refreshes of one token); 0 turns it off.
	RefreshGrace time.Duration `koanf:"refresh_grace"`
	// SessionMax is the most live sessions a user keeps: a login beyond it
	// ends the oldest; 0 means no limit.
	SessionMax int `koanf:"session_max"`
	// SessionSinglePerClient makes a login end the user's other sessions of
	// the same client (miniprogram, h5, app, web).
	SessionSinglePerClient bool `koanf:"session_single_per_client"`
}

// Redis configures the optional Redis connection.
type Redis struct {
	// Addr is host:port; empty means no Redis. Several comma-separated
	// addresses mean a Redis Cluster (any of its nodes; the others are
	// discovered).
	Addr     string `koanf:"addr"`
	Password string `koanf:"password"`
	DB       int    `koanf:"db"`
	// Prefix starts every key this service writes, so services can share a Redis.
	Prefix string `koanf:"prefix"`
}

// Enabled reports whether Redis is configured.
func (r Redis) Enabled() bool { return r.Addr != "" }

// Addrs splits Addr at commas.
func (r Redis) Addrs() []string {
	var out []string
	for _, a := range strings.Split(r.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Cluster reports whether Addr names a Redis Cluster (several addresses).
func (r Redis) Cluster() bool { return len(r.Addrs()) > 1 }

// Avatar configures avatar uploads.
type Avatar struct {
	// Dir is where uploaded avatars are stored.
	Dir string `koanf:"dir"`
	// MaxBytes caps an upload.
	MaxBytes int64 `koanf:"max_bytes"`
	// SweepInterval is how often files nobody points at are deleted.
	SweepInterval time.Duration `koanf:"sweep_interval"`
}

// Admin configures the operators' API.
type Admin struct {
	// Token is the bearer token of the admin API (at least MinSecretBytes);
	// empty: the admin API does not exist.
	Token string `koanf:"token"`
}

// Enabled reports whether the admin API is on.
func (a Admin) Enabled() bool { return a.Token != "" }

// String hides the token.
func (a Admin) String() string { return fmt.Sprintf("Admin{enabled: %t}", a.Enabled()) }

// GoString hides the token from %#v.
func (a Admin) GoString() string { return "config." + a.String() }

// Operator configures the operator listener: GET /metrics (Prometheus) and
// /debug/pprof/, on an address of its own, apart from the public API.
type Operator struct {
	// Addr is the listen address (APP_ADMIN_ADDR); empty turns the listener off.
	Addr string `koanf:"addr"`
}

// Identity configures how identities make up users.
type Identity struct {
	// Merge is "on" (default) or "off": whether two users found to share a
	// unionid are merged into one.
	Merge string `koanf:"merge"`
	// EncryptionKeys encrypt the session keys kept at rest:
	// "kid:base64url(32 bytes)", comma-separated, the first encrypts, all
	// decrypt. Empty: keys derived from the token secret (and the previous
	// ones), so a database dump alone decrypts nothing.
	EncryptionKeys string `koanf:"encryption_keys"`

	// tokenSecrets derive the keys when EncryptionKeys is empty.
	tokenSecrets []string
}

// Keys returns the ring's keys: the configured ones, else keys derived from
// the token secrets.
func (i Identity) Keys() ([]seal.Key, error) {
	if strings.TrimSpace(i.EncryptionKeys) == "" {
		var keys []seal.Key
		for _, s := range i.tokenSecrets {
			keys = append(keys, seal.Derive(s, "identity session keys"))
		}
		if len(keys) == 0 {
			return nil, errors.New("no APP_ENCRYPTION_KEYS and no token secret to derive them from")
		}
		return keys, nil
	}
	var keys []seal.Key
	for _, item := range strings.Split(i.EncryptionKeys, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		kid, raw, ok := strings.Cut(item, ":")
		secret, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "="))
		if !ok || kid == "" || err != nil || len(secret) != seal.KeySize {
			return nil, fmt.Errorf(`each key must look like "kid:base64url(%d bytes)"`, seal.KeySize)
		}
		keys = append(keys, seal.Key{ID: kid, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, errors.New("no key given")
	}
	if _, err := seal.New(keys...); err != nil {
		return nil, err
	}
	return keys, nil
}

// MergeOn reports whether users sharing a unionid are merged.
func (i Identity) MergeOn() bool { return i.Merge != "off" }

// Platforms.
const (
	PlatformWeChat = "wechat"
	PlatformQQ     = "qq"
	PlatformDouyin = "douyin"
	PlatformAlipay = "alipay"
)

// Platforms lists the platforms an app may name.
var Platforms = []string{PlatformWeChat, PlatformQQ, PlatformDouyin, PlatformAlipay}

// App kinds.
const (
	// KindMiniProgram: the device's login call gives a code for the
	// platform's jscode2session (or Alipay's oauth.token).
	KindMiniProgram = "miniprogram"
	// KindOAuth: a WeChat Official Account H5 page, mobile app or website
	// login; the code goes to /sns/oauth2/access_token.
	KindOAuth = "oauth"
)

// App is one app of the deployment: a mini program or an OAuth app on one
// platform. It prints and logs without its secrets.
type App struct {
	// Platform is "wechat" (default), "qq", "douyin" or "alipay".
	Platform string `koanf:"platform" json:"platform"`
	// AppID identifies the app; unique in the deployment.
	AppID string `koanf:"appid" json:"appid"`
	// Secret is the AppSecret (WeChat, QQ, Douyin). Never logged.
	Secret string `koanf:"secret" json:"secret"`
	// Kind is "miniprogram" (default) or, on WeChat, "oauth".
	Kind string `koanf:"kind" json:"kind"`
	// BaseURL overrides the platform's API root (a proxy, the emulator).
	BaseURL string `koanf:"base_url" json:"base_url"`
	// PushToken and PushAESKey configure WeChat's message push to
	// /wechat/push/{appid}: the Token and EncodingAESKey of the console.
	PushToken  string `koanf:"push_token" json:"push_token"`
	PushAESKey string `koanf:"push_aes_key" json:"push_aes_key"`
	// PrivateKey signs Alipay gateway requests (RSA2); AlipayPublicKey
	// verifies Alipay's answers; AESKey decrypts my.getPhoneNumber data.
	// PEM or base64 DER.
	PrivateKey      string `koanf:"private_key" json:"private_key"`
	AlipayPublicKey string `koanf:"alipay_public_key" json:"alipay_public_key"`
	AESKey          string `koanf:"aes_key" json:"aes_key"`
}

// String names the app without its secrets.
func (a App) String() string {
	return fmt.Sprintf("App{%s %s %s}", a.Platform, a.Kind, a.AppID)
}

// GoString hides the secrets from %#v.
func (a App) GoString() string { return "config." + a.String() }

// Apps is the list of configured apps.
type Apps []App

// Find returns the app with appid.
func (as Apps) Find(appid string) (App, bool) {
	for _, a := range as {
		if a.AppID == appid {
			return a, true
		}
	}
	return App{}, false
}

// Of returns the apps of one platform, in configuration order.
func (as Apps) Of(platform string) Apps {
	var out Apps
	for _, a := range as {
		if a.Platform == platform {
			out = append(out, a)
		}
	}
	return out
}

// Var is one environment variable and the configuration key it sets.
type Var struct {
	Name, Key, Default, Help string
}

// Vars lists every environment variable the service reads. The README's
// table is checked against it.
var Vars = []Var{
	{"APP_CONFIG", "", "config/config.yaml", "YAML file to read (optional)"},
	{"APP_ENV", "env", "development", "development | production"},
	{"APP_DATA_DIR", "data_dir", "./data", "where development keeps its SQLite file, generated secrets and avatars"},
	{"APP_HTTP_ADDR", "http.addr", "127.0.0.1:8080", "HTTP listen address"},
	{"APP_HTTP_PUBLIC_URL", "http.public_url", "http://APP_HTTP_ADDR", "public base URL, used in avatar URLs"},
	{"APP_HTTP_BODY_LIMIT", "http.body_limit", "65536", "largest request body of every route without a limit of its own (all but the avatar upload), bytes"},
	{"APP_HTTP_REQUEST_TIMEOUT", "http.request_timeout", "15s", "deadline of one request's work: a database or Redis that stops answering makes it a 503 instead of a hang"},
	{"APP_HTTP_TRUSTED_PROXIES", "http.trusted_proxies", "", "reverse proxies (IPs or CIDR prefixes, comma-separated) whose APP_HTTP_PROXY_HEADER names the client's address"},
	{"APP_HTTP_PROXY_HEADER", "http.proxy_header", "X-Forwarded-For", "header through which trusted proxies pass the client's address (the rightmost untrusted entry counts)"},
	{"APP_DATABASE_DRIVER", "database.driver", "sqlite", "sqlite | mysql | postgres"},
	{"APP_DATABASE_DSN", "database.dsn", "SQLite file ./data/wxlogin.db", "data source name, e.g. root@tcp(127.0.0.1:3306)/app?parseTime=true (mysql), postgres://root@127.0.0.1:5432/app?sslmode=disable (postgres)"},
	{"APP_DATABASE_AUTOMIGRATE", "database.auto_migrate", "true in development", "migrate the schema at start"},
	{"APP_APPS", "apps", "one development mini program", "the apps served, a JSON list of {platform, appid, secret, kind, …} (see Apps)"},
	{"APP_WECHAT_APPID", "wechat.appid", "development value", "one WeChat mini program's AppID, added to APP_APPS"},
	{"APP_WECHAT_SECRET", "wechat.secret", "development value", "that mini program's AppSecret"},
	{"APP_IDENTITY_MERGE", "identity.merge", "on", "merge two users found to be one person (a unionid learnt late belongs to another user): on | off"},
	{"APP_ENCRYPTION_KEYS", "identity.encryption_keys", "derived from APP_TOKEN_SECRET", "keys encrypting the session keys kept at rest: kid:base64url(32 bytes), comma-separated, first encrypts"},
	{"APP_WECHAT_BASEURL", "wechat.base_url", "https://api.weixin.qq.com", "WeChat API root"},
	{"APP_WECHAT_EMULATOR", "wechat.emulator", "true in development", "run the built-in WeChat emulator and use it (refused in production)"},
	{"APP_WECHAT_EMULATOR_ADDR", "wechat.emulator_addr", "127.0.0.1:8081", "emulator listen address"},
	{"APP_WECHAT_STABLETOKEN", "wechat.stable_token", "true", "fetch access tokens with /cgi-bin/stable_token"},
	{"APP_WECHAT_TIMEOUT", "wechat.timeout", "5s", "timeout of every WeChat call"},
	{"APP_TOKEN_STRATEGY", "token.strategy", "jwt", "jwt | db | redis"},
	{"APP_TOKEN_SECRET", "token.secret", "generated into ./data in development", "HS256 signing secret and the key that tags refresh tokens (every strategy), at least 32 bytes (required in production)"},
	{"APP_TOKEN_PREVIOUS_SECRETS", "token.previous_secrets", "", "comma-separated HS256 secrets that still verify after a rotation"},
	{"APP_TOKEN_TTL", "token.ttl", "2h", "access token lifetime (Go duration)"},
	{"APP_TOKEN_REFRESH_TTL", "token.refresh_ttl", "720h", "refresh token lifetime (Go duration)"},
	{"APP_TOKEN_ISSUER", "token.issuer", "wxlogin", "JWT issuer (iss)"},
	{"APP_TOKEN_AUDIENCE", "token.audience", "APP_TOKEN_ISSUER", "JWT audience (aud), put in every access token and required of every one presented"},
	{"APP_TOKEN_JWT_ALG", "token.jwt_alg", "HS256", "HS256 | EdDSA"},
	{"APP_TOKEN_JWT_KEYS", "token.jwt_keys", "generated into ./data in development", "Ed25519 keys kid:base64url(seed), comma-separated, first signs (required for EdDSA in production)"},
	{"APP_TOKEN_REFRESH_IDLE", "token.refresh_idle", "0", "a session whose refresh token is not used for this long expires (0 = off); APP_TOKEN_REFRESH_TTL then counts from the login"},
	{"APP_TOKEN_REFRESH_GRACE", "token.refresh_grace", "30s", "how long the refresh token a refresh just replaced is accepted again (concurrent refreshes); 0 = off"},
	{"APP_SESSION_MAX", "token.session_max", "10", "most live sessions per user; a login beyond it ends the oldest (0 = no limit)"},
	{"APP_SESSION_SINGLE_PER_CLIENT", "token.session_single_per_client", "false", "a login ends the user's other sessions of the same client"},
	{"APP_TOKEN_CACHE_SIZE", "token.cache_size", "200000", "verified tokens kept in memory; 0 disables the cache"},
	{"APP_TOKEN_REVOCATION_POLL", "token.revocation_poll", "500ms", "how often revocations by other instances are read from the database (without Redis)"},
	{"APP_TOKEN_CLEANUP_INTERVAL", "token.cleanup_interval", "1m", "how often expired tokens and deny-list entries are deleted"},
	{"APP_REDIS_ADDR", "redis.addr", "", "Redis host:port; several comma-separated addresses mean a Redis Cluster; empty means no Redis"},
	{"APP_REDIS_PASSWORD", "redis.password", "", "Redis password"},
	{"APP_REDIS_DB", "redis.db", "0", "Redis database number"},
	{"APP_REDIS_PREFIX", "redis.prefix", "wxlogin:", "prefix of every Redis key this service writes"},
	{"APP_AVATAR_DIR", "avatar.dir", "./data/avatars", "where uploaded avatars are stored"},
	{"APP_AVATAR_MAX_BYTES", "avatar.max_bytes", "2097152", "largest avatar upload, bytes"},
	{"APP_ADMIN_TOKEN", "admin.token", "", "bearer token of the operators' API under /admin/v1, at least 32 bytes; unset: no admin API (404)"},
	{"APP_ADMIN_ADDR", "operator.addr", "127.0.0.1:9090", "operator listener (GET /metrics, /debug/pprof/); empty turns it off"},
	{"APP_AVATAR_SWEEP_INTERVAL", "avatar.sweep_interval", "10m", "how often uploaded avatars that their owner does not point at (older than 15 minutes) are deleted"},
	{"APP_RATELIMIT_LOGIN_FAILURES", "ratelimit.login_failures", "60/10m", "failed logins per client address (IPv6: per /64), N/duration or off"},
	{"APP_RATELIMIT_REFRESH", "ratelimit.refresh", "30/1h", "refreshes per session"},
	{"APP_RATELIMIT_AVATAR_UPLOADS", "ratelimit.avatar_uploads", "5/10m", "avatar uploads per user"},
	{"APP_RATELIMIT_OPEN_DATA", "ratelimit.open_data", "30/10m", "phone-number and user-info calls per user"},
	{"APP_RATELIMIT_PLATFORM_CALLS", "ratelimit.platform_calls", "30000/1m", "calls to a platform's API per app, across the fleet (protects the app's quota)"},
	{"APP_RATELIMIT_MEMORY_KEYS", "ratelimit.memory_keys", "50000", "keys each limit keeps in memory (without Redis); the least recently seen go first"},
}

// LookupFunc reads one environment variable; os.LookupEnv is the usual one.
type LookupFunc func(string) (string, bool)

// Load reads the configuration from the process environment.
func Load() (*Config, error) { return LoadFrom(os.LookupEnv) }

// LoadFrom reads the configuration with the given environment lookup, so
// tests can load without touching the process environment. In development
// it may create files under DataDir (a generated token secret, JWT keys).
func LoadFrom(lookup LookupFunc) (*Config, error) {
	k := koanf.New(".")
	env := func(name string) string {
		v, _ := lookup(name)
		return v
	}

	// The environment decides development defaults, so read it first.
	appEnv := strings.TrimSpace(env("APP_ENV"))
	path, explicit := lookup("APP_CONFIG")
	if !explicit || path == "" {
		path = "config/config.yaml"
	}
	fileValues := koanf.New(".")
	if _, err := os.Stat(path); err == nil {
		if err := fileValues.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", path, err)
		}
	} else if explicit {
		return nil, fmt.Errorf("config: APP_CONFIG names %s, which cannot be read: %w", path, err)
	}
	if appEnv == "" {
		appEnv = fileValues.String("env")
	}
	if appEnv == "" {
		appEnv = Development
	}
	dev := appEnv == Development

	_ = k.Load(confmap.Provider(defaults(dev), "."), nil)
	_ = k.Merge(fileValues)
	overrides := map[string]any{}
	var envApps Apps
	for _, v := range Vars {
		if v.Key == "" {
			continue
		}
		s, ok := lookup(v.Name)
		if !ok {
			continue
		}
		if v.Name == "APP_APPS" {
			apps, err := parseAppsJSON(s)
			if err != nil {
				return nil, err
			}
			envApps = apps
			continue
		}
		overrides[v.Key] = s
	}
	_ = k.Load(confmap.Provider(overrides, "."), nil)

	var cfg Config
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{Tag: "koanf", FlatPaths: false}); err != nil {
		return nil, fmt.Errorf("config: %w", errorsForPeople(err))
	}
	cfg.Env = appEnv
	if envApps != nil {
		cfg.Apps = envApps
	}
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func defaults(dev bool) map[string]any {
	return withLimitDefaults(map[string]any{
		"data_dir":               "./data",
		"http.addr":              "127.0.0.1:8080",
		"http.body_limit":        64 << 10,
		"http.shutdown_timeout":  "10s",
		"database.driver":        "sqlite",
		"database.auto_migrate":  dev,
		"wechat.base_url":        "https://api.weixin.qq.com",
		"wechat.emulator":        dev,
		"wechat.emulator_addr":   "127.0.0.1:8081",
		"wechat.stable_token":    true,
		"wechat.timeout":         "5s",
		"token.strategy":         "jwt",
		"token.ttl":              "2h",
		"token.refresh_ttl":      "720h",
		"token.issuer":           "wxlogin",
		"token.jwt_alg":          "HS256",
		"token.cache_size":       200000,
		"token.refresh_grace":    "30s",
		"token.session_max":      10,
		"token.revocation_poll":  "500ms",
		"token.cleanup_interval": "1m",
		"redis.prefix":           "wxlogin:",
		"identity.merge":         "on",
		"avatar.max_bytes":       2 << 20,
		"operator.addr":          "127.0.0.1:9090",
	})
}

// errorsForPeople turns a decoding error into something that names the key.
func errorsForPeople(err error) error {
	return fmt.Errorf("a value has the wrong type (durations look like 90s or 2h, numbers and booleans as usual): %w", err)
}

// complete fills derived defaults, generates development material and
// validates. It returns one error listing every problem.
func (c *Config) complete() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	dev := c.Env == Development

	if c.Env != Development && c.Env != Production {
		bad("APP_ENV must be %q or %q, not %q", Development, Production, c.Env)
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.HTTP.PublicURL == "" {
		c.HTTP.PublicURL = "http://" + c.HTTP.Addr
	}
	c.HTTP.PublicURL = strings.TrimRight(c.HTTP.PublicURL, "/")
	if u, err := url.Parse(c.HTTP.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("APP_HTTP_PUBLIC_URL must be an http(s) URL, not %q", c.HTTP.PublicURL)
	}
	if c.HTTP.Addr == "" {
		bad("APP_HTTP_ADDR must not be empty")
	}
	if c.HTTP.BodyLimit <= 0 {
		bad("APP_HTTP_BODY_LIMIT must be positive")
	}
	if c.HTTP.RequestTimeout <= 0 {
		bad("APP_HTTP_REQUEST_TIMEOUT must be a positive duration")
	}
	if _, err := c.HTTP.TrustedProxyPrefixes(); err != nil {
		bad("APP_HTTP_TRUSTED_PROXIES: %v", err)
	}
	if strings.TrimSpace(c.HTTP.ProxyHeader) == "" {
		c.HTTP.ProxyHeader = "X-Forwarded-For"
	}

	switch c.Database.Driver {
	case "sqlite":
		if c.Database.DSN == "" {
			c.Database.DSN = "file:" + filepath.ToSlash(filepath.Join(c.DataDir, "wxlogin.db"))
		}
	case "mysql":
		if c.Database.DSN == "" {
			bad("APP_DATABASE_DSN is required with APP_DATABASE_DRIVER=mysql (e.g. root@tcp(127.0.0.1:3306)/app?parseTime=true)")
		}
	case "postgres":
		if c.Database.DSN == "" {
			bad("APP_DATABASE_DSN is required with APP_DATABASE_DRIVER=postgres (e.g. postgres://root@127.0.0.1:5432/app?sslmode=disable)")
		}
	default:
		bad("APP_DATABASE_DRIVER must be sqlite, mysql or postgres, not %q", c.Database.Driver)
	}

	c.completeApps(bad)
	c.Identity.Merge = strings.ToLower(strings.TrimSpace(c.Identity.Merge))
	if c.Identity.Merge != "on" && c.Identity.Merge != "off" {
		bad("APP_IDENTITY_MERGE must be on or off, not %q", c.Identity.Merge)
	}
	if c.WeChat.Emulator && !dev {
		bad("APP_WECHAT_EMULATOR must be false in production: the emulator accepts any device")
	}
	if c.WeChat.Emulator {
		c.WeChat.BaseURL = "http://" + c.WeChat.EmulatorAddr
		// The other platforms' emulators share the listener, each under its name.
		for i := range c.Apps {
			if a := &c.Apps[i]; a.Platform != PlatformWeChat && a.BaseURL == "" {
				a.BaseURL = c.WeChat.BaseURL + "/" + a.Platform
			}
		}
	}
	if u, err := url.Parse(c.WeChat.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("APP_WECHAT_BASEURL must be an http(s) URL, not %q", c.WeChat.BaseURL)
	} else if !dev && u.Scheme != "https" {
		// The AppSecret travels in its query: never in clear text.
		bad("APP_WECHAT_BASEURL must be an https URL in production (the AppSecret travels to it), not %q", c.WeChat.BaseURL)
	}
	c.WeChat.BaseURL = strings.TrimRight(c.WeChat.BaseURL, "/")
	if c.WeChat.Timeout <= 0 {
		bad("APP_WECHAT_TIMEOUT must be a positive duration")
	}

	if !slices.Contains([]string{"jwt", "db", "redis"}, c.Token.Strategy) {
		bad("APP_TOKEN_STRATEGY must be jwt, db or redis, not %q", c.Token.Strategy)
	}
	if c.Token.Strategy == "redis" && !c.Redis.Enabled() {
		bad("APP_TOKEN_STRATEGY=redis needs APP_REDIS_ADDR")
	}
	if c.Token.TTL <= 0 {
		bad("APP_TOKEN_TTL must be a positive duration")
	}
	if c.Token.RefreshTTL < c.Token.TTL {
		bad("APP_TOKEN_REFRESH_TTL must be at least APP_TOKEN_TTL")
	}
	if c.Token.Issuer == "" {
		bad("APP_TOKEN_ISSUER must not be empty")
	}
	if c.Token.Audience = strings.TrimSpace(c.Token.Audience); c.Token.Audience == "" {
		c.Token.Audience = c.Token.Issuer
	}
	if c.Token.CacheSize < 0 {
		bad("APP_TOKEN_CACHE_SIZE must be 0 or more")
	}
	if c.Token.RefreshIdle < 0 || (c.Token.RefreshIdle > 0 && c.Token.RefreshIdle < c.Token.TTL) {
		bad("APP_TOKEN_REFRESH_IDLE must be 0 (off) or at least APP_TOKEN_TTL")
	}
	if c.Token.RefreshGrace < 0 {
		bad("APP_TOKEN_REFRESH_GRACE must be 0 (off) or a positive duration")
	} else if c.Token.TTL > 0 && c.Token.RefreshGrace >= c.Token.TTL {
		// A replaced refresh token must not outlive the access tokens it
		// could mint; a short APP_TOKEN_TTL shortens the grace with it.
		c.Token.RefreshGrace = c.Token.TTL / 2
		c.Warnings = append(c.Warnings, fmt.Sprintf("APP_TOKEN_REFRESH_GRACE is not shorter than APP_TOKEN_TTL: using %s", c.Token.RefreshGrace))
	}
	if c.Token.SessionMax < 0 {
		bad("APP_SESSION_MAX must be 0 (no limit) or more")
	}
	if c.Token.RevocationPoll <= 0 || c.Token.CleanupInterval <= 0 {
		bad("APP_TOKEN_REVOCATION_POLL and APP_TOKEN_CLEANUP_INTERVAL must be positive durations")
	}
	if c.Token.Secret == "" && dev {
		secret, err := c.devMaterial("token_secret", func() (string, error) { return randomString(48) })
		if err != nil {
			bad("cannot keep a generated token secret in %s: %v", c.DataDir, err)
		} else {
			c.Token.Secret = secret
			c.Warnings = append(c.Warnings, "APP_TOKEN_SECRET is not set: using a generated development secret kept in "+filepath.Join(c.DataDir, "token_secret"))
		}
	}
	if c.Token.Secret == "" {
		bad("APP_TOKEN_SECRET is required in production (at least %d bytes)", MinSecretBytes)
	} else if len(c.Token.Secret) < MinSecretBytes {
		bad("APP_TOKEN_SECRET must be at least %d bytes, it has %d", MinSecretBytes, len(c.Token.Secret))
	}
	for _, s := range c.Token.PreviousSecretList() {
		if len(s) < MinSecretBytes {
			bad("every APP_TOKEN_PREVIOUS_SECRETS entry must be at least %d bytes", MinSecretBytes)
			break
		}
	}
	switch c.Token.JWTAlg {
	case "HS256":
	case "EdDSA":
		if c.Token.JWTKeys == "" && dev {
			keys, err := c.devMaterial("jwt_keys", func() (string, error) { return NewJWTKey("dev-1") })
			if err != nil {
				bad("cannot keep generated JWT keys in %s: %v", c.DataDir, err)
			} else {
				c.Token.JWTKeys = keys
				c.Warnings = append(c.Warnings, "APP_TOKEN_JWT_KEYS is not set: using a generated development Ed25519 key kept in "+filepath.Join(c.DataDir, "jwt_keys"))
			}
		}
		if c.Token.JWTKeys == "" {
			bad("APP_TOKEN_JWT_KEYS is required with APP_TOKEN_JWT_ALG=EdDSA in production")
		} else if _, err := c.Token.Ed25519Keys(); err != nil {
			bad("APP_TOKEN_JWT_KEYS: %v", err)
		}
	default:
		bad("APP_TOKEN_JWT_ALG must be HS256 or EdDSA, not %q", c.Token.JWTAlg)
	}

	c.Identity.tokenSecrets = append([]string{c.Token.Secret}, c.Token.PreviousSecretList()...)
	if c.Token.Secret == "" {
		c.Identity.tokenSecrets = nil
	}
	if _, err := c.Identity.Keys(); err != nil && c.Token.Secret != "" {
		bad("APP_ENCRYPTION_KEYS: %v", err)
	}
	if c.Redis.DB < 0 {
		bad("APP_REDIS_DB must be 0 or more")
	}
	if c.Redis.Cluster() && c.Redis.DB != 0 {
		bad("APP_REDIS_DB must be 0 with a Redis Cluster (several APP_REDIS_ADDR addresses)")
	}
	if c.Admin.Token != "" && len(c.Admin.Token) < MinSecretBytes {
		bad("APP_ADMIN_TOKEN must be at least %d bytes, it has %d", MinSecretBytes, len(c.Admin.Token))
	}
	if c.Avatar.Dir == "" {
		c.Avatar.Dir = filepath.Join(c.DataDir, "avatars")
	}
	if c.Avatar.MaxBytes <= 0 {
		bad("APP_AVATAR_MAX_BYTES must be positive")
	}
	if c.Avatar.SweepInterval <= 0 {
		bad("APP_AVATAR_SWEEP_INTERVAL must be a positive duration")
	}
	if c.RateLimit.MemoryKeys <= 0 {
		bad("APP_RATELIMIT_MEMORY_KEYS must be positive")
	}

	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

// completeApps folds APP_WECHAT_APPID/APP_WECHAT_SECRET into the app list,
// fills defaults (platform wechat, kind miniprogram), adds the development
// app when none is configured in development, and checks every entry.
func (c *Config) completeApps(bad func(string, ...any)) {
	dev := c.Env == Development
	if c.WeChat.AppID != "" {
		if i := slices.IndexFunc(c.Apps, func(a App) bool { return a.AppID == c.WeChat.AppID }); i < 0 {
			c.Apps = append(Apps{{Platform: PlatformWeChat, AppID: c.WeChat.AppID, Secret: c.WeChat.Secret, Kind: KindMiniProgram}}, c.Apps...)
		} else if c.Apps[i].Secret == "" {
			c.Apps[i].Secret = c.WeChat.Secret
		}
	} else if c.WeChat.Secret != "" {
		bad("APP_WECHAT_SECRET is set without APP_WECHAT_APPID")
	}
	if len(c.Apps) == 0 {
		if dev {
			c.Apps = Apps{{Platform: PlatformWeChat, AppID: DevAppID, Secret: DevSecret, Kind: KindMiniProgram}}
		} else {
			bad("no app is configured: set APP_APPS (or APP_WECHAT_APPID and APP_WECHAT_SECRET)")
		}
	}
	seen := map[string]bool{}
	for i := range c.Apps {
		a := &c.Apps[i]
		a.Platform = strings.ToLower(strings.TrimSpace(a.Platform))
		a.AppID = strings.TrimSpace(a.AppID)
		a.Kind = strings.ToLower(strings.TrimSpace(a.Kind))
		if a.Platform == "" {
			a.Platform = PlatformWeChat
		}
		if a.Kind == "" {
			a.Kind = KindMiniProgram
		}
		name := fmt.Sprintf("APP_APPS[%d]", i)
		if a.AppID != "" {
			name += " (" + a.AppID + ")"
		}
		switch {
		case a.AppID == "":
			bad("%s: appid is required", name)
		case len(a.AppID) > 64 || !printable(a.AppID):
			bad("%s: appid must be at most 64 printable ASCII characters", name)
		case seen[a.AppID]:
			bad("%s: appid is listed twice; appids are unique in a deployment", name)
		}
		seen[a.AppID] = true
		if !slices.Contains(Platforms, a.Platform) {
			bad("%s: platform must be one of %s, not %q", name, strings.Join(Platforms, ", "), a.Platform)
			continue
		}
		switch {
		case a.Kind != KindMiniProgram && a.Kind != KindOAuth:
			bad("%s: kind must be %q or %q, not %q", name, KindMiniProgram, KindOAuth, a.Kind)
		case a.Kind == KindOAuth && a.Platform != PlatformWeChat:
			bad("%s: kind %q exists on WeChat only", name, KindOAuth)
		}
		if a.Platform != PlatformAlipay && a.Secret == "" {
			if dev && a.AppID == DevAppID {
				a.Secret = DevSecret
			} else if !dev {
				bad("%s: secret is required in production", name)
			} else {
				bad("%s: secret is required", name)
			}
		}
		c.completeAlipay(a, name, bad)
		if a.BaseURL != "" {
			if u, err := url.Parse(a.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("%s: base_url must be an http(s) URL, not %q", name, a.BaseURL)
			} else if !dev && u.Scheme != "https" {
				bad("%s: base_url must be an https URL in production (credentials travel to it), not %q", name, a.BaseURL)
			}
			a.BaseURL = strings.TrimRight(a.BaseURL, "/")
		}
		if a.PushAESKey != "" && a.PushToken == "" {
			bad("%s: push_aes_key needs push_token", name)
		}
		if a.PushAESKey != "" && len(a.PushAESKey) != 43 {
			bad("%s: push_aes_key must be the 43-character EncodingAESKey of the console", name)
		} else if a.PushAESKey != "" {
			if k, err := base64.StdEncoding.DecodeString(a.PushAESKey + "="); err != nil || len(k) != 32 {
				bad("%s: push_aes_key is not an EncodingAESKey (43 characters of A-Z, a-z, 0-9)", name)
			}
		}
	}
	// The first WeChat mini program stays reachable as WeChat.AppID/Secret
	// for code written for a single app.
	for _, a := range c.Apps.Of(PlatformWeChat) {
		if a.Kind == KindMiniProgram {
			c.WeChat.AppID, c.WeChat.Secret = a.AppID, a.Secret
			break
		}
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseAppsJSON reads APP_APPS: a JSON list of app objects.
func parseAppsJSON(s string) (Apps, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Apps{}, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var apps Apps
	if err := dec.Decode(&apps); err != nil {
		return nil, fmt.Errorf("config: APP_APPS must be a JSON list of apps such as "+
			`[{"appid":"wx…","secret":"…","kind":"miniprogram"}]: %s`, jsonProblem(err))
	}
	if dec.More() {
		return nil, errors.New("config: APP_APPS must hold exactly one JSON list")
	}
	return apps, nil
}

// jsonProblem describes a decoding error without quoting the input, which
// holds secrets.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", te.Field)
		}
		return "not a list of objects"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

// Error lists everything wrong with a configuration.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "configuration refused:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// devMaterial returns the content of DataDir/name, creating it with make
// (mode 0600) when it does not exist yet.
func (c *Config) devMaterial(name string, make func() (string, error)) (string, error) {
	path := filepath.Join(c.DataDir, name)
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	value, err := make()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		return "", err
	}
	return value, nil
}

// JWTAudience is the audience JWTs carry and must carry: Audience, else
// Issuer.
func (t Token) JWTAudience() string {
	if t.Audience != "" {
		return t.Audience
	}
	return t.Issuer
}

// PreviousSecretList splits PreviousSecrets.
func (t Token) PreviousSecretList() []string {
	var out []string
	for _, s := range strings.Split(t.PreviousSecrets, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// JWTKey is one named Ed25519 signing key.
type JWTKey struct {
	ID         string
	PrivateKey ed25519.PrivateKey
}

// Ed25519Keys parses JWTKeys; the first key signs.
func (t Token) Ed25519Keys() ([]JWTKey, error) {
	var keys []JWTKey
	seen := map[string]bool{}
	for _, item := range strings.Split(t.JWTKeys, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		kid, seed, ok := strings.Cut(item, ":")
		if !ok || kid == "" {
			return nil, errors.New(`each key must look like "kid:base64url-seed"`)
		}
		if seen[kid] {
			return nil, fmt.Errorf("kid %q appears twice", kid)
		}
		seen[kid] = true
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seed, "="))
		if err != nil || len(raw) != ed25519.SeedSize {
			return nil, fmt.Errorf("key %q: the seed must be %d bytes in base64url", kid, ed25519.SeedSize)
		}
		keys = append(keys, JWTKey{ID: kid, PrivateKey: ed25519.NewKeyFromSeed(raw)})
	}
	if len(keys) == 0 {
		return nil, errors.New("no key given")
	}
	return keys, nil
}

// NewJWTKey makes a new "kid:seed" entry for APP_TOKEN_JWT_KEYS.
func NewJWTKey(kid string) (string, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return "", err
	}
	return kid + ":" + base64.RawURLEncoding.EncodeToString(seed), nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// IsDevelopment reports whether the service runs in development.
func (c *Config) IsDevelopment() bool { return c.Env == Development }
