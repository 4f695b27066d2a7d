package wechat

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Clients holds one Client per configured WeChat app, each with that app's
// credentials; every call uses the credentials of the app it is for.
type Clients struct {
	byApp map[string]Client
	order []string
}

// NewClients builds an HTTPClient for every WeChat app in apps. platform
// gives what all apps share (base URL, timeout, stable_token); an app's own
// BaseURL overrides the base URL. opts apply to every client (they share
// the token store: tokens are keyed by appid).
func NewClients(platform config.WeChat, apps config.Apps, opts ...Option) (*Clients, error) {
	cs := &Clients{byApp: map[string]Client{}}
	for _, a := range apps.Of(config.PlatformWeChat) {
		c, err := NewClient(AppConfig(platform, a), opts...)
		if err != nil {
			return nil, fmt.Errorf("wechat: app %s: %w", a.AppID, err)
		}
		cs.byApp[a.AppID] = c
		cs.order = append(cs.order, a.AppID)
	}
	return cs, nil
}

// AppConfig is platform with app's credentials (and base URL, when the app
// names one): what NewClient takes for one app.
func AppConfig(platform config.WeChat, app config.App) config.WeChat {
	platform.AppID, platform.Secret = app.AppID, app.Secret
	if app.BaseURL != "" {
		platform.BaseURL = app.BaseURL
	}
	return platform
}

// Client returns the client of a WeChat app.
func (cs *Clients) Client(appid string) (Client, bool) {
	c, ok := cs.byApp[appid]
	return c, ok
}

// AppIDs lists the apps, in configuration order.
func (cs *Clients) AppIDs() []string { return append([]string(nil), cs.order...) }

// Map returns a copy whose clients are f's results: the way to wrap or
// replace the clients, e.g. fx.Decorate(func(c *wechat.Clients) *wechat.Clients {
// return c.Map(func(appid string, c wechat.Client) wechat.Client { return audited{c} }) }).
func (cs *Clients) Map(f func(appid string, c Client) Client) *Clients {
	out := &Clients{byApp: map[string]Client{}, order: cs.AppIDs()}
	for _, id := range cs.order {
		out.byApp[id] = f(id, cs.byApp[id])
	}
	return out
}

// closeIdle closes the idle connections of the clients that keep some.
func (cs *Clients) closeIdle() {
	for _, c := range cs.byApp {
		if h, ok := c.(interface{ CloseIdleConnections() }); ok {
			h.CloseIdleConnections()
		}
	}
}

// ErrSnapshotUser refuses an OAuth login of a "snapshot page" virtual
// user: WeChat vouches for nobody real, so no account is made of it.
var ErrSnapshotUser = &provider.Error{Platform: config.PlatformWeChat, Kind: provider.KindRefused, Code: "is_snapshotuser",
	Message: "a snapshot-page virtual user: the user must tap 使用完整服务 and authorize again"}

// Provider logs people in through WeChat apps: mini programs (wx.login code
// → code2Session) and OAuth apps (code → /sns/oauth2/access_token, and the
// profile from /sns/userinfo when the scope allows). It hands out phone
// numbers of mini-program users.
type Provider struct {
	clients *Clients
	log     *zap.Logger
}

var _ provider.PhoneProvider = (*Provider)(nil)

// NewProvider returns the WeChat provider over clients.
func NewProvider(clients *Clients, log *zap.Logger) *Provider {
	if log == nil {
		log = zap.NewNop()
	}
	return &Provider{clients: clients, log: log.Named("wechat")}
}

// Platform is "wechat".
func (p *Provider) Platform() string { return config.PlatformWeChat }

func (p *Provider) client(app config.App) (Client, error) {
	c, ok := p.clients.Client(app.AppID)
	if !ok {
		return nil, &provider.Error{Platform: config.PlatformWeChat, Kind: provider.KindMisconfigured,
			Message: "no WeChat client for app " + app.AppID}
	}
	return c, nil
}

// Login exchanges the code for the identity it proves in app.
func (p *Provider) Login(ctx context.Context, app config.App, cred provider.Credentials) (provider.Identity, error) {
	c, err := p.client(app)
	if err != nil {
		return provider.Identity{}, err
	}
	id := provider.Identity{Provider: config.PlatformWeChat, Kind: app.Kind, AppID: app.AppID}
	if app.Kind == config.KindOAuth {
		tok, err := c.OAuthAccessToken(ctx, cred.Code)
		if err != nil {
			return provider.Identity{}, err
		}
		if tok.Snapshot {
			return provider.Identity{}, ErrSnapshotUser
		}
		id.OpenID, id.UnionID = tok.OpenID, tok.UnionID
		if tok.HasScope("snsapi_userinfo") {
			// The profile is a bonus: without it the login still stands.
			if u, err := c.OAuthUserInfo(ctx, tok); err != nil {
				p.log.Info("oauth profile not read; logging in without it", zap.String("appid", app.AppID), zap.Error(err))
			} else {
				id.Nickname, id.AvatarURL = u.Nickname, u.AvatarURL
				if id.UnionID == "" {
					id.UnionID = u.UnionID
				}
			}
		}
		return id, nil
	}
	s, err := c.Code2Session(ctx, cred.Code)
	if err != nil {
		return provider.Identity{}, err
	}
	id.OpenID, id.UnionID, id.SessionKey = s.OpenID, s.UnionID, s.SessionKey
	return id, nil
}

// Phone returns a mini-program user's phone number, from a getPhoneNumber
// code or from the legacy encrypted data (decrypted with the identity's
// session key, its watermark checked against the app).
func (p *Provider) Phone(ctx context.Context, app config.App, req provider.PhoneRequest) (provider.Phone, error) {
	if app.Kind != config.KindMiniProgram {
		return provider.Phone{}, &provider.Error{Platform: config.PlatformWeChat, Kind: provider.KindUnsupported,
			Message: "phone numbers come from mini programs only"}
	}
	if req.Code != "" {
		c, err := p.client(app)
		if err != nil {
			return provider.Phone{}, err
		}
		info, err := c.GetPhoneNumber(ctx, req.Code)
		if err != nil {
			return provider.Phone{}, err
		}
		return provider.Phone{Number: info.PhoneNumber, PureNumber: info.PurePhoneNumber, CountryCode: info.CountryCode}, nil
	}
	if req.SessionKey == "" {
		return provider.Phone{}, wxcrypto.ErrStaleSessionKey
	}
	info, err := wxcrypto.DecryptPhone(req.SessionKey.Reveal(), req.EncryptedData, req.IV, app.AppID)
	if err != nil {
		return provider.Phone{}, err
	}
	return provider.Phone{Number: info.PhoneNumber, PureNumber: info.PurePhoneNumber, CountryCode: string(info.CountryCode)}, nil
}
