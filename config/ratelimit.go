package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RateLimit configures the abuse limits (modules/ratelimit). Each is a
// [Rate]: a burst of N, refilled evenly over Per; "off" turns one off. The
// defaults are far above what a person does; they stop scripts.
type RateLimit struct {
	// LoginFailures limits failed logins per client address (an IPv6
	// address counts by its /64). Successes are not counted: many users
	// share a carrier's address.
	LoginFailures Rate `koanf:"login_failures"`
	// Refresh limits refreshes per session.
	Refresh Rate `koanf:"refresh"`
	// AvatarUploads limits avatar uploads per user.
	AvatarUploads Rate `koanf:"avatar_uploads"`
	// OpenData limits phone-number and user-info calls per user.
	OpenData Rate `koanf:"open_data"`
	// PlatformCalls is the budget of calls to a platform's API (WeChat's
	// code2Session, phone numbers, …) per app, across the fleet.
	PlatformCalls Rate `koanf:"platform_calls"`
	// MemoryKeys bounds the keys each limit keeps in memory (without Redis,
	// or while Redis does not answer); the least recently seen go first.
	MemoryKeys int `koanf:"memory_keys"`
}

// Rate is N events per Per: a bucket of N that refills at N per Per. The
// zero Rate is off.
type Rate struct {
	N   int
	Per time.Duration
}

// Off reports whether the limit is turned off.
func (r Rate) Off() bool { return r.N <= 0 || r.Per <= 0 }

// Interval is the time one event's room takes to come back.
func (r Rate) Interval() time.Duration {
	if r.Off() {
		return 0
	}
	return r.Per / time.Duration(r.N)
}

// String is the rate as configured, e.g. "60/10m0s", or "off".
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String()
}

// ParseRate reads "N/duration" (e.g. "60/10m", "5/1h", "3000/1m") or
// "off".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "off") || s == "0" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || count <= 0 {
		return Rate{}, fmt.Errorf("%q is not a rate: write N/duration, e.g. 60/10m, or off", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("%q is not a rate: the period must be a positive duration such as 1m or 1h", s)
	}
	if d/time.Duration(count) < time.Microsecond {
		return Rate{}, errors.New("a rate of more than one event per microsecond is not a limit")
	}
	return Rate{N: count, Per: d}, nil
}

// UnmarshalText reads a rate from configuration.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText writes the rate as configured.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// withLimitDefaults adds the defaults of the proxy header, the request
// deadline, the avatar sweep and the rate limits to m.
func withLimitDefaults(m map[string]any) map[string]any {
	for k, v := range map[string]any{
		"http.proxy_header":        "X-Forwarded-For",
		"http.request_timeout":     "15s",
		"avatar.sweep_interval":    "10m",
		"ratelimit.login_failures": "60/10m",
		"ratelimit.refresh":        "30/1h",
		"ratelimit.avatar_uploads": "5/10m",
		"ratelimit.open_data":      "30/10m",
		// [U] WeChat publishes no per-app minute quota for code2Session
		// (only 45011's 100 calls per user per minute). The default must
		// not refuse real users at a peak — a burst of 30 000 calls, then
		// 500 a second — while a flood of junk codes from many addresses
		// still cannot spend an unbounded number of calls; operators set
		// what their app was granted.
		"ratelimit.platform_calls": "30000/1m",
		"ratelimit.memory_keys":    50000,
	} {
		m[k] = v
	}
	return m
}
