package qq

import (
	"context"
	"fmt"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Provider logs people in with QQ mini programs: the qq.login code goes to
// jscode2session. QQ offers no phone number to mini programs, so Phone
// always fails with provider.KindUnsupported.
type Provider struct {
	client Client
}

var (
	_ provider.Provider      = (*Provider)(nil)
	_ provider.PhoneProvider = (*Provider)(nil)
)

// NewProvider returns the QQ provider on client.
func NewProvider(client Client) *Provider { return &Provider{client: client} }

// Platform is "qq".
func (p *Provider) Platform() string { return Platform }

// Client is the provider's QQ client (for AccessToken).
func (p *Provider) Client() Client { return p.client }

// Login exchanges c.Code for the user's identity in app: OpenID, UnionID
// (scoped to the app's QQ Connect account) and SessionKey.
func (p *Provider) Login(ctx context.Context, app config.App, c provider.Credentials) (provider.Identity, error) {
	if app.Platform != Platform {
		return provider.Identity{}, &provider.Error{Platform: Platform, Kind: provider.KindMisconfigured,
			Message: fmt.Sprintf("app %s is not a QQ app", app.AppID)}
	}
	s, err := p.client.Code2Session(ctx, app.AppID, c.Code)
	if err != nil {
		return provider.Identity{}, err
	}
	return provider.Identity{
		Provider:   Platform,
		Kind:       app.Kind,
		AppID:      app.AppID,
		OpenID:     s.OpenID,
		UnionID:    s.UnionID,
		SessionKey: s.SessionKey,
	}, nil
}

// Phone always fails with provider.KindUnsupported: no QQ server API or
// device call hands a mini program the user's phone number. [U]
func (p *Provider) Phone(context.Context, config.App, provider.PhoneRequest) (provider.Phone, error) {
	return provider.Phone{}, &provider.Error{Platform: Platform, Kind: provider.KindUnsupported,
		Message: "QQ mini programs cannot obtain the user's phone number"}
}
