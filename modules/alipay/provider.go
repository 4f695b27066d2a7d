package alipay

import (
	"context"
	"fmt"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Provider logs people in with Alipay mini programs: my.getAuthCode's
// authCode goes to the gateway's alipay.system.oauth.token; phone numbers
// come from my.getPhoneNumber's signed, encrypted response.
type Provider struct {
	client Client
}

var (
	_ provider.Provider      = (*Provider)(nil)
	_ provider.PhoneProvider = (*Provider)(nil)
)

// NewProvider returns the Alipay provider on client.
func NewProvider(client Client) *Provider { return &Provider{client: client} }

// Platform is "alipay".
func (p *Provider) Platform() string { return Platform }

// Login exchanges c.Code (the authCode) for the user's identity in app.
// OpenID is the open_id; for an app still in user_id mode it is
// UserIDPrefix + user_id ("user_id:2088…"), which never equals an open_id
// (see SplitOpenID). UnionID is Alipay's union_id when sent. There is no
// session key.
func (p *Provider) Login(ctx context.Context, app config.App, c provider.Credentials) (provider.Identity, error) {
	if app.Platform != Platform {
		return provider.Identity{}, &provider.Error{Platform: Platform, Kind: provider.KindMisconfigured,
			Message: fmt.Sprintf("app %s is not an Alipay app", app.AppID)}
	}
	t, err := p.client.OAuthToken(ctx, app.AppID, c.Code)
	if err != nil {
		return provider.Identity{}, err
	}
	openid := t.OpenID
	if openid == "" {
		openid = UserIDPrefix + t.UserID
	}
	return provider.Identity{
		Provider: Platform,
		Kind:     app.Kind,
		AppID:    app.AppID,
		OpenID:   openid,
		UnionID:  t.UnionID,
	}, nil
}

// Phone reads the phone number from req.Response, my.getPhoneNumber's
// response string (see HTTPClient.PhoneNumber for the checks and errors).
func (p *Provider) Phone(ctx context.Context, app config.App, req provider.PhoneRequest) (provider.Phone, error) {
	if req.Response == "" {
		return provider.Phone{}, &provider.Error{Platform: Platform, Message: "my.getPhoneNumber",
			Err: fmt.Errorf("%w: Alipay's phone number comes as my.getPhoneNumber's response string (field response)", wxcrypto.ErrMalformed)}
	}
	return p.client.PhoneNumber(ctx, app.AppID, req.Response)
}
