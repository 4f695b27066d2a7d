package wechat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.uber.org/zap/zapcore"
)

const redacted = "[redacted]"

// SessionKey is a user's session_key. It prints, marshals to JSON/text and
// logs as "[redacted]"; Reveal (or string(k)) gives the value to code that
// must store it or decrypt with it. It must never leave the server.
type SessionKey string

// Reveal returns the session key itself.
func (k SessionKey) Reveal() string { return string(k) }

// String hides the key from fmt.
func (SessionKey) String() string { return redacted }

// GoString hides the key from %#v.
func (SessionKey) GoString() string { return `"` + redacted + `"` }

// Format hides the key from every fmt verb (%d, %x and the rest included).
func (k SessionKey) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		_, _ = io.WriteString(f, k.GoString())
		return
	}
	_, _ = io.WriteString(f, k.String())
}

// MarshalJSON hides the key from encoding/json (and from zap's reflection).
func (SessionKey) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText hides the key from text encoders.
func (SessionKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

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
