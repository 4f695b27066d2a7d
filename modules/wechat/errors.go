package wechat

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// ErrUnavailable matches every failure to get a usable answer from WeChat
// (transport failures, unreadable answers, errcode -1): retry later.
var ErrUnavailable = errors.New("wechat: unavailable")

// ErrBadResponse matches an answer that could not be used: empty, not JSON,
// too large, or a "success" without its essential fields.
var ErrBadResponse = errors.New("wechat: unusable response")

// Kind classifies an error for the caller; see the package doc for the table.
type Kind int

// Kinds of WeChat errors.
const (
	// KindUnknown is an errcode this package does not classify.
	KindUnknown Kind = iota
	// KindInvalidCode: the code from the device is invalid, used, expired or missing.
	KindInvalidCode
	// KindRateLimited: a WeChat quota was reached.
	KindRateLimited
	// KindBlocked: WeChat refuses this user (high-risk).
	KindBlocked
	// KindUnavailable: WeChat is busy or could not be reached.
	KindUnavailable
	// KindMisconfigured: the AppID, AppSecret or server setup is wrong; an operator must act.
	KindMisconfigured
	// KindAccessToken: WeChat rejected the access token, even after one re-read and retry.
	KindAccessToken
	// KindSessionKey: the session key is missing, expired or does not match.
	KindSessionKey
)

var kindNames = [...]string{
	KindUnknown:       "unknown",
	KindInvalidCode:   "invalid_code",
	KindRateLimited:   "rate_limited",
	KindBlocked:       "blocked",
	KindUnavailable:   "unavailable",
	KindMisconfigured: "misconfigured",
	KindAccessToken:   "access_token",
	KindSessionKey:    "session_key",
}

// String names the kind in snake_case.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// kindOf classifies an errcode; 40013 depends on the API that answered.
func kindOf(path string, code int) Kind {
	switch code {
	case -1:
		return KindUnavailable
	case 40029, 40163, 41008:
		return KindInvalidCode
	case 40013:
		if path == pathPhoneNumber {
			return KindInvalidCode // the code belongs to another appid
		}
		return KindMisconfigured // invalid appid
	case 45011, 45009:
		return KindRateLimited
	case 40226:
		return KindBlocked
	case 40125, 41002, 41004, 40164, 40243, 40002, 89503:
		return KindMisconfigured
	case 40001, 40014, 41001, 42001:
		if path == pathUserInfo {
			return KindInvalidCode // the user's OAuth token, not the app's
		}
		return KindAccessToken
	case 42003: // oauth_code expired [U]: seen only in an SDK's copy of the global error table
		return KindInvalidCode
	case 87007, 87009, 40097:
		return KindSessionKey
	}
	return KindUnknown
}

// Error is an answer from WeChat with a non-zero errcode.
type Error struct {
	// Path is the API path that answered, e.g. "/sns/jscode2session".
	Path string
	// Code is WeChat's errcode.
	Code int
	// Message is WeChat's errmsg (secrets scrubbed).
	Message string
	// RID is the request id found in errmsg, what WeChat support asks for.
	RID string
}

// Error names the path, errcode, kind and errmsg.
func (e *Error) Error() string {
	return fmt.Sprintf("wechat %s: errcode %d (%s): %s", e.Path, e.Code, e.Kind(), e.Message)
}

// Kind classifies the errcode.
func (e *Error) Kind() Kind { return kindOf(e.Path, e.Code) }

// ProviderError classifies the error for the provider seam.
func (e *Error) ProviderError() (string, provider.Kind) {
	return config.PlatformWeChat, e.Kind().provider()
}

// ProviderError classifies the error for the provider seam: unavailable.
func (e *TransportError) ProviderError() (string, provider.Kind) {
	return config.PlatformWeChat, provider.KindUnavailable
}

// ProviderError classifies the error for the provider seam: unavailable.
func (e *ResponseError) ProviderError() (string, provider.Kind) {
	return config.PlatformWeChat, provider.KindUnavailable
}

// provider maps a Kind to the seam's kinds.
func (k Kind) provider() provider.Kind {
	switch k {
	case KindInvalidCode:
		return provider.KindInvalidCode
	case KindRateLimited:
		return provider.KindRateLimited
	case KindBlocked:
		return provider.KindBlocked
	case KindUnavailable, KindAccessToken:
		return provider.KindUnavailable
	case KindMisconfigured:
		return provider.KindMisconfigured
	case KindSessionKey:
		return provider.KindSessionKey
	}
	return provider.KindUnknown
}

// Is makes errcode -1 (system busy) match ErrUnavailable.
func (e *Error) Is(target error) bool {
	return target == ErrUnavailable && e.Kind() == KindUnavailable
}

// TransportError is a call that got no answer: timeout, connection refused,
// DNS or TLS failure, cancelled context. It matches ErrUnavailable and
// unwraps to the cause (e.g. context.DeadlineExceeded); it never holds a URL.
type TransportError struct {
	// Path is the API path that was called.
	Path string
	// Err is the cause, with net/http's *url.Error (which holds the URL) removed.
	Err error
}

// Error names the path and the cause, never the URL.
func (e *TransportError) Error() string {
	return "wechat " + e.Path + ": unavailable: " + e.Err.Error()
}

// Unwrap returns ErrUnavailable and the cause.
func (e *TransportError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// ResponseError is an answer that could not be used. It matches
// ErrBadResponse and ErrUnavailable; the body itself is never kept.
type ResponseError struct {
	// Path is the API path that answered.
	Path string
	// StatusCode is the HTTP status.
	StatusCode int
	// ContentType is the Content-Type header as sent.
	ContentType string
	// Problem says what was wrong with the body.
	Problem string
}

// Error names the path, status, Content-Type and problem.
func (e *ResponseError) Error() string {
	return fmt.Sprintf("wechat %s: unusable answer (HTTP %d, %q): %s", e.Path, e.StatusCode, e.ContentType, e.Problem)
}

// Is matches ErrBadResponse and ErrUnavailable.
func (e *ResponseError) Is(target error) bool {
	return target == ErrBadResponse || target == ErrUnavailable
}

// KindOf classifies any error returned by this package: the Kind of an
// *Error, KindUnavailable for anything matching ErrUnavailable, else
// KindUnknown (also for nil).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind()
	}
	if errors.Is(err, ErrUnavailable) {
		return KindUnavailable
	}
	return KindUnknown
}

// IsKind reports whether KindOf(err) is k.
func IsKind(err error, k Kind) bool { return err != nil && KindOf(err) == k }

var ridPatterns = []*regexp.Regexp{
	regexp.MustCompile(`\brid:\s*([A-Za-z0-9_-]+)`),
	regexp.MustCompile(`\breq_id:\s*([A-Za-z0-9_-]+)`),
}

// requestID extracts the rid ("rid: 6523a1b2-...") or the older req_id
// ("hints: [ req_id: XXXX ]") from an errmsg.
func requestID(errmsg string) string {
	for _, re := range ridPatterns {
		if m := re.FindStringSubmatch(errmsg); m != nil {
			return m[1]
		}
	}
	return ""
}

// withoutURL strips net/http's *url.Error, whose text holds the full URL
// with ?secret= or ?access_token=, keeping only the cause.
func withoutURL(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) {
			return err
		}
		if ue.Err == nil {
			return errors.New(ue.Op + " failed")
		}
		err = ue.Err
	}
}

// scrub replaces every non-empty secret in s, as is and URL-encoded.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if v == "" {
			continue
		}
		s = strings.ReplaceAll(s, v, redacted)
		if q := url.QueryEscape(v); q != v {
			s = strings.ReplaceAll(s, q, redacted)
		}
	}
	return s
}
