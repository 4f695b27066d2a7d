package user

import (
	"time"

	"github.com/wxlogin/wxlogin/ent"
)

// Public is the user as the HTTP API shows it: never a session_key.
type Public struct {
	ID int `json:"id"`
	// OpenID and UnionID are those of the identity the caller logged in
	// with (the only one, for a single app).
	OpenID           string           `json:"openid"`
	UnionID          *string          `json:"unionid"`
	Nickname         string           `json:"nickname"`
	AvatarURL        string           `json:"avatar_url"`
	Phone            *string          `json:"phone"`
	PhoneCountryCode *string          `json:"phone_country_code"`
	CreatedAt        time.Time        `json:"created_at"`
	UpdatedAt        time.Time        `json:"updated_at"`
	LastLoginAt      *time.Time       `json:"last_login_at"`
	Identities       []PublicIdentity `json:"identities"`
}

// PublicIdentity is one identity as the HTTP API shows it.
type PublicIdentity struct {
	Provider string  `json:"provider"`
	Kind     string  `json:"kind"`
	AppID    string  `json:"appid"`
	OpenID   string  `json:"openid"`
	UnionID  *string `json:"unionid"`
}

// View returns the public form of u (loaded with its identities), seen
// through the identity via: its openid and unionid are the user's
// "openid" and "unionid".
func View(u *ent.User, via IdentityKey) Public {
	p := Public{
		ID:               u.ID,
		Nickname:         u.Nickname,
		AvatarURL:        u.AvatarURL,
		Phone:            u.Phone,
		PhoneCountryCode: u.PhoneCountryCode,
		CreatedAt:        u.CreatedAt.UTC(),
		UpdatedAt:        u.UpdatedAt.UTC(),
		Identities:       make([]PublicIdentity, 0, len(u.Edges.Identities)),
	}
	var current *ent.Identity
	for _, id := range u.Edges.Identities {
		p.Identities = append(p.Identities, PublicIdentity{
			Provider: id.Provider, Kind: id.Kind, AppID: id.Appid, OpenID: id.Openid, UnionID: id.Unionid,
		})
		if current == nil || (KeyOf(id) == via && KeyOf(current) != via) {
			current = id
		}
		if id.LastLoginAt != nil && (p.LastLoginAt == nil || id.LastLoginAt.After(*p.LastLoginAt)) {
			t := id.LastLoginAt.UTC()
			p.LastLoginAt = &t
		}
	}
	if current != nil {
		p.OpenID, p.UnionID = current.Openid, current.Unionid
	}
	return p
}
