package douyin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Provider logs people in with Douyin (ByteDance) mini programs: tt.login's
// code and/or anonymousCode go to the v2 jscode2session. It decrypts the
// legacy phone-number data with the session key; the newer phone code flow
// is not supported.
type Provider struct {
	client Client
}

var (
	_ provider.Provider      = (*Provider)(nil)
	_ provider.PhoneProvider = (*Provider)(nil)
)

// NewProvider returns the Douyin provider on client.
func NewProvider(client Client) *Provider { return &Provider{client: client} }

// Platform is "douyin".
func (p *Provider) Platform() string { return Platform }

// Client is the provider's Douyin client (for AccessToken).
func (p *Provider) Client() Client { return p.client }

// Login exchanges c.Code and/or c.AnonymousCode for the user's identity in
// app. With a code: OpenID, UnionID (scoped to the developer account and the
// host app) and SessionKey. With an anonymous code: AnonymousOpenID (per
// device). A device not logged in to Douyin sends only the anonymous code:
// the identity then has an empty OpenID.
func (p *Provider) Login(ctx context.Context, app config.App, c provider.Credentials) (provider.Identity, error) {
	if app.Platform != Platform {
		return provider.Identity{}, &provider.Error{Platform: Platform, Kind: provider.KindMisconfigured,
			Message: fmt.Sprintf("app %s is not a Douyin app", app.AppID)}
	}
	s, err := p.client.Code2Session(ctx, app.AppID, c.Code, c.AnonymousCode)
	if err != nil {
		return provider.Identity{}, err
	}
	return provider.Identity{
		Provider:        Platform,
		Kind:            app.Kind,
		AppID:           app.AppID,
		OpenID:          s.OpenID,
		UnionID:         s.UnionID,
		SessionKey:      s.SessionKey,
		AnonymousOpenID: s.AnonymousOpenID,
	}, nil
}

// phonePlain is the decrypted phone data. [U] that Douyin's plaintext
// carries WeChat's purePhoneNumber, countryCode and watermark besides
// phoneNumber: each is used when present.
type phonePlain struct {
	PhoneNumber     string               `json:"phoneNumber"`
	PurePhoneNumber string               `json:"purePhoneNumber"`
	CountryCode     wxcrypto.CountryCode `json:"countryCode"`
	Watermark       *struct {
		AppID string `json:"appid"`
	} `json:"watermark"`
}

// Phone decrypts the legacy getPhoneNumber data (req.EncryptedData, req.IV)
// with the identity's stored session key [D]: AES-128-CBC as on WeChat. A
// watermark naming another app is refused. The errors wrap wxcrypto's
// sentinels (errors.Is): ErrMalformed (bad input), ErrStaleSessionKey (the
// device called tt.login after producing the data; provider.KindSessionKey),
// ErrAppIDMismatch, ErrSessionKey (no usable stored key; KindSessionKey).
// The newer one-time phone code (req.Code alone) fails with
// provider.KindUnsupported: its OpenAPI URL and answer are [U].
func (p *Provider) Phone(_ context.Context, app config.App, req provider.PhoneRequest) (provider.Phone, error) {
	if req.EncryptedData == "" && req.IV == "" {
		if req.Code != "" {
			return provider.Phone{}, &provider.Error{Platform: Platform, Kind: provider.KindUnsupported,
				Message: "the phone-number code flow is not supported; send the legacy encrypted_data and iv"}
		}
		return provider.Phone{}, openDataError(fmt.Errorf("%w: encrypted_data and iv are required", wxcrypto.ErrMalformed))
	}
	plain, err := wxcrypto.Open(req.SessionKey.Reveal(), req.EncryptedData, req.IV)
	if err != nil {
		return provider.Phone{}, openDataError(err)
	}
	var ph phonePlain
	if err := json.Unmarshal(plain, &ph); err != nil || ph.PhoneNumber == "" {
		return provider.Phone{}, openDataError(fmt.Errorf("%w: the decrypted data holds no phoneNumber", wxcrypto.ErrMalformed))
	}
	if ph.Watermark != nil && ph.Watermark.AppID != app.AppID {
		return provider.Phone{}, openDataError(fmt.Errorf("%w", wxcrypto.ErrAppIDMismatch))
	}
	out := provider.Phone{Number: ph.PhoneNumber, PureNumber: ph.PurePhoneNumber, CountryCode: string(ph.CountryCode)}
	if out.PureNumber == "" {
		out.PureNumber = out.Number
	}
	return out, nil
}

// openDataError classifies a decryption failure for provider.Classify while
// keeping wxcrypto's sentinel for errors.Is: a stale or unusable session key
// is KindSessionKey; malformed or foreign data is the client's mistake,
// KindUnknown (httpserver maps the wxcrypto sentinels to 400/403 first).
func openDataError(err error) error {
	kind := provider.KindUnknown
	if errors.Is(err, wxcrypto.ErrStaleSessionKey) || errors.Is(err, wxcrypto.ErrSessionKey) {
		kind = provider.KindSessionKey
	}
	return &provider.Error{Platform: Platform, Kind: kind, Message: "phone data", Err: err}
}
