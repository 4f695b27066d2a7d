package platformtoken

import (
	"fmt"
	"io"
	"time"

	"go.uber.org/zap/zapcore"
)

const redacted = "[redacted]"

// Token is an access token as a Store keeps it. It prints and logs as
// "[redacted]"; Value is the token itself.
type Token struct {
	// Value is the access token.
	Value string
	// RefreshAt is when instances stop using it and fetch the next one
	// (five minutes before ExpiresAt, or half-way for short lifetimes).
	RefreshAt time.Time
	// ExpiresAt is when the platform stops accepting it; stores may drop it then.
	ExpiresAt time.Time
}

// String hides the token value from fmt.
func (t Token) String() string {
	return fmt.Sprintf("Token{Value:%s RefreshAt:%s ExpiresAt:%s}", redacted,
		t.RefreshAt.Format(time.RFC3339), t.ExpiresAt.Format(time.RFC3339))
}

// GoString hides the token value from %#v.
func (t Token) GoString() string { return "platformtoken." + t.String() }

// Format hides the token value from every fmt verb.
func (t Token) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, t.GoString())
		return
	}
	_, _ = io.WriteString(f, t.String())
}

// MarshalLogObject logs the times, never the value.
func (t Token) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddTime("refresh_at", t.RefreshAt)
	enc.AddTime("expires_at", t.ExpiresAt)
	return nil
}

// MarshalJSON hides the token value from encoding/json.
func (t Token) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"value":%q,"refresh_at":%q,"expires_at":%q}`, redacted,
		t.RefreshAt.Format(time.RFC3339), t.ExpiresAt.Format(time.RFC3339)), nil
}

// FreshAt reports whether the token is set and should still be used at now.
func (t Token) FreshAt(now time.Time) bool { return t.Value != "" && now.Before(t.RefreshAt) }
