package wechat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/wxlogin/wxlogin/modules/provider"
)

const redacted = "[redacted]"

// OAuthToken is the answer of /sns/oauth2/access_token: a user-level token
// for /sns/* (not the app's access token) and who the user is.
type OAuthToken struct {
	// AccessToken and RefreshToken are the user's; they print as "[redacted]".
	AccessToken  provider.Secret
	RefreshToken provider.Secret
	ExpiresIn    time.Duration
	OpenID       string
	// UnionID is set only for apps bound to an Open Platform account (and,
	// for Official Account pages, only with scope snsapi_userinfo).
	UnionID string
	// Scopes are what the user granted, e.g. ["snsapi_userinfo"].
	Scopes []string
	// Snapshot marks a "snapshot page" virtual user: never an account.
	Snapshot bool
}

// HasScope reports whether the user granted scope.
func (t OAuthToken) HasScope(scope string) bool {
	for _, s := range t.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// OAuthUser is the answer of /sns/userinfo. WeChat no longer fills gender
// and region (since 2021-10), so they are left out.
type OAuthUser struct {
	OpenID, UnionID string
	Nickname        string
	// AvatarURL is headimgurl; it dies when the user changes avatar.
	AvatarURL string
}

// SessionKey is a user's session_key: a provider.Secret, which prints,
// marshals and logs as "[redacted]"; Reveal gives the value to code that
// must store it or decrypt with it. It must never leave the server.
type SessionKey = provider.Secret

// Session is the answer of code2Session (and of resetUserSessionKey, which
// leaves UnionID empty).
type Session struct {
	OpenID string
	// UnionID is set only when the mini program is bound to an Open Platform account.
	UnionID    string
	SessionKey SessionKey
}

// MarshalLogObject logs the ids, never the session key.
func (s Session) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("openid", s.OpenID)
	if s.UnionID != "" {
		enc.AddString("unionid", s.UnionID)
	}
	return nil
}

// PhoneInfo is the answer of getPhoneNumber.
type PhoneInfo struct {
	// PhoneNumber includes the country code for numbers outside mainland China.
	PhoneNumber string
	// PurePhoneNumber is the number without the country code.
	PurePhoneNumber string
	// CountryCode is e.g. "86" (WeChat sends a string or a number).
	CountryCode string
	Watermark   Watermark
}

// Watermark says which app a piece of WeChat data was produced for, and when.
type Watermark struct {
	AppID string
	// Timestamp is in Unix seconds.
	Timestamp int64
}

// flexInt decodes a JSON integer, a numeric string or null (as 0): errcode
// and expires_in must not turn a readable answer into a decoding error.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer")
	}
	*f = flexInt(n)
	return nil
}
