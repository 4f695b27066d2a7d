package user

import (
	"time"

	"github.com/wxlogin/wxlogin/ent"
)

// Public is the user as the HTTP API shows it: never the session_key.
type Public struct {
	ID               int        `json:"id"`
	OpenID           string     `json:"openid"`
	UnionID          *string    `json:"unionid"`
	Nickname         string     `json:"nickname"`
	AvatarURL        string     `json:"avatar_url"`
	Phone            *string    `json:"phone"`
	PhoneCountryCode *string    `json:"phone_country_code"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	LastLoginAt      *time.Time `json:"last_login_at"`
}

// View returns the public form of u.
func View(u *ent.User) Public {
	return Public{
		ID:               u.ID,
		OpenID:           u.Openid,
		UnionID:          u.Unionid,
		Nickname:         u.Nickname,
		AvatarURL:        u.AvatarURL,
		Phone:            u.Phone,
		PhoneCountryCode: u.PhoneCountryCode,
		CreatedAt:        u.CreatedAt.UTC(),
		UpdatedAt:        u.UpdatedAt.UTC(),
		LastLoginAt:      u.LastLoginAt,
	}
}
