// Package provider is the seam between the login flow and the platforms a
// person can log in through: WeChat (mini programs and OAuth apps), and the
// other mini-program platforms. A platform module implements [Provider]
// (and, where the platform offers it, [PhoneProvider]) and joins the
// "providers" value group with [AsProvider]; the login flow and the profile
// routes only see this package.
//
// [Registry] resolves an appid of config.Apps to its app and the provider of
// its platform. [Module] provides it and refuses to start when a configured
// app's platform has no provider in the application, so a missing module is
// found at start, not at the first login.
//
// Errors a provider returns carry their platform and a [Kind] ([Classify]),
// which modules/httpserver maps to HTTP answers the same way for every
// platform: KindInvalidCode → 401 invalid_code, KindRateLimited → 429,
// KindUnavailable → 503 <platform>_unavailable, KindMisconfigured → 500
// <platform>_misconfigured with a log line for the operator.
//
// A [Budget] in the graph (modules/ratelimit provides one) is asked before
// every call a provider makes for an app (Login, Phone), so that scripted
// junk cannot spend an app's quota at the platform; its refusal is
// answered as is.
//
// An application adds a platform of its own by providing a Provider with
// AsProvider and listing apps of that platform; it replaces a built-in one
// with fx.Decorate on the platform module's provider type.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.uber.org/fx"
	"go.uber.org/zap/zapcore"

	"github.com/wxlogin/wxlogin/config"
)

// Module provides the *Registry built from config.Apps and the "providers"
// group.
var Module = fx.Module("provider",
	fx.Provide(NewRegistryFx),
)

// Credentials is what the device's login call produced.
type Credentials struct {
	// Code is the login code: wx.login / qq.login / tt.login's code,
	// my.getAuthCode's authCode, or an OAuth redirect's code.
	Code string
	// AnonymousCode is Douyin's anonymousCode (tt.login), sent alone by a
	// device not logged in to Douyin.
	AnonymousCode string
}

// Identity is one account of a person on one app, as its platform vouches
// for it.
type Identity struct {
	// Provider is the platform: "wechat", "qq", "douyin", "alipay".
	Provider string
	// Kind is the app's kind: "miniprogram" or "oauth".
	Kind string
	// AppID is the app the account belongs to.
	AppID string
	// OpenID is the app-scoped user id (Alipay: open_id, or the legacy
	// user_id of apps not switched to open_id). Empty for a Douyin device
	// that sent only an anonymous code.
	OpenID string
	// UnionID is the platform-scoped id shared by the apps of one developer
	// account; empty when the platform gave none. It never links across
	// platforms.
	UnionID string
	// SessionKey decrypts the user's open data; empty where the platform
	// has none. It never leaves the server.
	SessionKey Secret
	// AnonymousOpenID is Douyin's per-device id, set when an anonymous code
	// was exchanged.
	AnonymousOpenID string
	// Nickname and AvatarURL are a profile the platform handed over with
	// the login (WeChat OAuth with snsapi_userinfo); empty otherwise.
	Nickname, AvatarURL string
}

// MarshalLogObject logs the ids, never the session key.
func (i Identity) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("provider", i.Provider)
	enc.AddString("appid", i.AppID)
	enc.AddString("openid", i.OpenID)
	if i.UnionID != "" {
		enc.AddString("unionid", i.UnionID)
	}
	return nil
}

// Phone is a phone number a platform vouched for.
type Phone struct {
	// Number is the number as the platform gives it (with country code for
	// numbers outside mainland China).
	Number string
	// PureNumber is the number without its country code.
	PureNumber string
	// CountryCode is e.g. "86".
	CountryCode string
}

// PhoneRequest is what the device handed over from the platform's
// phone-number button. Which fields apply depends on the platform.
type PhoneRequest struct {
	// Code is a one-time phone code (WeChat getPhoneNumber, Douyin's new flow).
	Code string
	// EncryptedData and IV are the legacy encrypted phone number, decrypted
	// with SessionKey.
	EncryptedData, IV string
	// Response is Alipay's my.getPhoneNumber response string.
	Response string
	// SessionKey is the identity's stored session key, for EncryptedData.
	SessionKey Secret
	// OpenID is the caller's openid in this app.
	OpenID string
}

// Provider exchanges what a device's login call produced for the identity
// it proves, on one platform.
type Provider interface {
	// Platform is the platform name apps are configured with ("wechat", …).
	Platform() string
	// Login exchanges c for an identity of app. It fails with an error that
	// [Classify] understands.
	Login(ctx context.Context, app config.App, c Credentials) (Identity, error)
}

// PhoneProvider is implemented by providers whose platform hands out phone
// numbers.
type PhoneProvider interface {
	Provider
	// Phone returns the phone number req proves for app.
	Phone(ctx context.Context, app config.App, req PhoneRequest) (Phone, error)
}

// AsProvider annotates a constructor of a Provider so that it joins the
// "providers" value group: fx.Provide(provider.AsProvider(NewMyProvider)).
func AsProvider(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(Provider)), fx.ResultTags(`group:"providers"`))
}

// Budget decides whether a platform call for an app may go ahead.
type Budget interface {
	// Spend takes one call from app's budget; a non-nil error is the
	// answer to give instead of calling the platform.
	Spend(ctx context.Context, app config.App) error
}

// Registry resolves appids to their app and provider.
type Registry struct {
	apps       config.Apps
	byPlatform map[string]Provider
}

// RegistryOption adjusts NewRegistry.
type RegistryOption func(*Registry)

// WithBudget makes every Login and Phone call of the registry's providers
// spend from b first.
func WithBudget(b Budget) RegistryOption {
	return func(r *Registry) {
		if b == nil {
			return
		}
		for name, p := range r.byPlatform {
			r.byPlatform[name] = budgeted(p, b)
		}
	}
}

// budgeted wraps p so that its calls spend from b; it stays a
// PhoneProvider when p is one.
func budgeted(p Provider, b Budget) Provider {
	base := budgetedProvider{p: p, budget: b}
	if phones, ok := p.(PhoneProvider); ok {
		return budgetedPhones{budgetedProvider: base, phones: phones}
	}
	return base
}

type budgetedProvider struct {
	p      Provider
	budget Budget
}

func (b budgetedProvider) Platform() string { return b.p.Platform() }

func (b budgetedProvider) Login(ctx context.Context, app config.App, c Credentials) (Identity, error) {
	if err := b.budget.Spend(ctx, app); err != nil {
		return Identity{}, err
	}
	return b.p.Login(ctx, app, c)
}

type budgetedPhones struct {
	budgetedProvider
	phones PhoneProvider
}

func (b budgetedPhones) Phone(ctx context.Context, app config.App, req PhoneRequest) (Phone, error) {
	if err := b.budget.Spend(ctx, app); err != nil {
		return Phone{}, err
	}
	return b.phones.Phone(ctx, app, req)
}

// ErrUnknownApp means the appid is not configured.
var ErrUnknownApp = errors.New("provider: unknown app")

// NewRegistry returns a registry of apps served by providers. Every app's
// platform must have exactly one provider.
func NewRegistry(apps config.Apps, providers []Provider, opts ...RegistryOption) (*Registry, error) {
	r := &Registry{apps: apps, byPlatform: map[string]Provider{}}
	for _, p := range providers {
		if p == nil {
			continue
		}
		name := p.Platform()
		if _, dup := r.byPlatform[name]; dup {
			return nil, fmt.Errorf("provider: two providers for platform %q", name)
		}
		r.byPlatform[name] = p
	}
	var missing []string
	for _, a := range apps {
		if _, ok := r.byPlatform[a.Platform]; !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", a.Platform, a.AppID))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("provider: no provider module for the platform of %s: add the platform's module to the application",
			strings.Join(missing, ", "))
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// RegistryParams are NewRegistryFx's dependencies.
type RegistryParams struct {
	fx.In
	Apps      config.Apps
	Providers []Provider `group:"providers"`
	// Budget, when the graph has one, limits the platform calls per app.
	Budget Budget `optional:"true"`
}

// NewRegistryFx is NewRegistry for fx.
func NewRegistryFx(p RegistryParams) (*Registry, error) {
	return NewRegistry(p.Apps, p.Providers, WithBudget(p.Budget))
}

// Apps lists the configured apps.
func (r *Registry) Apps() config.Apps { return r.apps }

// Resolve returns the app with appid and its platform's provider, or
// ErrUnknownApp.
func (r *Registry) Resolve(appid string) (config.App, Provider, error) {
	a, ok := r.apps.Find(appid)
	if !ok {
		return config.App{}, nil, ErrUnknownApp
	}
	return a, r.byPlatform[a.Platform], nil
}

// Provider returns the provider of a platform.
func (r *Registry) Provider(platform string) (Provider, bool) {
	p, ok := r.byPlatform[platform]
	return p, ok
}

// Kind classifies a provider's failure for the caller.
type Kind int

// Kinds of provider errors.
const (
	// KindUnknown is a refusal the provider does not classify.
	KindUnknown Kind = iota
	// KindInvalidCode: the code from the device is invalid, used, expired
	// or belongs to another app; get a new one on the device.
	KindInvalidCode
	// KindRateLimited: a platform quota was reached.
	KindRateLimited
	// KindBlocked: the platform refuses this user (high-risk).
	KindBlocked
	// KindUnavailable: the platform is busy or could not be reached.
	KindUnavailable
	// KindMisconfigured: the app's credentials or the server's setup are
	// wrong; an operator must act.
	KindMisconfigured
	// KindSessionKey: the session key is missing, expired or does not match.
	KindSessionKey
	// KindUnsupported: the platform or app kind does not offer this.
	KindUnsupported
	// KindRefused: the platform refused to vouch for this user (e.g. a
	// WeChat "snapshot page" virtual user).
	KindRefused
)

var kindNames = [...]string{
	KindUnknown:       "unknown",
	KindInvalidCode:   "invalid_code",
	KindRateLimited:   "rate_limited",
	KindBlocked:       "blocked",
	KindUnavailable:   "unavailable",
	KindMisconfigured: "misconfigured",
	KindSessionKey:    "session_key",
	KindUnsupported:   "unsupported",
	KindRefused:       "refused",
}

// String names the kind in snake_case.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Classifier is implemented by every error a provider returns (its own
// typed errors included), so that one mapping serves every platform.
type Classifier interface {
	error
	// ProviderError names the platform and classifies the failure.
	ProviderError() (platform string, kind Kind)
}

// Classify finds the platform and kind of a provider error; ok is false for
// errors no provider produced.
func Classify(err error) (platform string, kind Kind, ok bool) {
	var c Classifier
	if !errors.As(err, &c) {
		return "", KindUnknown, false
	}
	platform, kind = c.ProviderError()
	return platform, kind, true
}

// Error is a provider failure for platforms without richer error types of
// their own. Message is for logs: it must not hold secrets.
type Error struct {
	Platform string
	Kind     Kind
	// Code is the platform's own error code, if any ("40029", "isv.code-invalid").
	Code    string
	Message string
	// Err is the cause, if any.
	Err error
}

// Error names the platform, kind, code and message.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Platform, e.Kind)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ProviderError classifies the error.
func (e *Error) ProviderError() (string, Kind) { return e.Platform, e.Kind }

// Secret is a value that must never leave the server: it prints, marshals
// and logs as "[redacted]"; Reveal gives the value to code that must use it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String hides the secret from fmt.
func (Secret) String() string { return redacted }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return `"` + redacted + `"` }

// Format hides the secret from every fmt verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// MarshalJSON hides the secret from encoding/json.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText hides the secret from text encoders.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
