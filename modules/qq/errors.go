package qq

import (
	"fmt"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Platform is the platform name apps are configured with.
const Platform = config.PlatformQQ

// TransportError is a call that got no answer (timeout, connection refused,
// TLS, cancelled context): provider.KindUnavailable. It never holds a URL.
type TransportError = platformhttp.TransportError

// ResponseError is an answer that could not be used (HTTP error without
// errcode, empty or non-JSON body, too large, a success without openid or
// session_key): provider.KindUnavailable, or KindRateLimited for HTTP 429.
type ResponseError = platformhttp.ResponseError

// Error is an answer from QQ with a non-zero errcode, or the same refusal
// made locally for an obviously bad argument (an empty code: 41008).
type Error struct {
	// Path is the API path that answered, e.g. "/sns/jscode2session".
	Path string
	// Code is QQ's errcode.
	Code int
	// Message is QQ's errmsg (secrets scrubbed).
	Message string
}

// Error names the path, errcode, kind and errmsg.
func (e *Error) Error() string {
	return fmt.Sprintf("qq %s: errcode %d (%s): %s", e.Path, e.Code, e.Kind(), e.Message)
}

// Kind classifies the errcode; see the package doc for the table.
func (e *Error) Kind() provider.Kind { return kindOf(e.Path, e.Code) }

// ProviderError names the platform and classifies the error.
func (e *Error) ProviderError() (string, provider.Kind) { return Platform, e.Kind() }

var _ provider.Classifier = (*Error)(nil)

// kindOf classifies an errcode. QQ documents -1, 40029 and 45011 for
// jscode2session and -1, 40001, 40002, 40013 for getToken; the rest follows
// WeChat, whose API QQ's copies.
func kindOf(path string, code int) provider.Kind {
	switch code {
	case -1:
		return provider.KindUnavailable
	case 40029, 41008:
		return provider.KindInvalidCode
	case 40163: // [U] WeChat's "code been used"; QQ documents no used-code errcode.
		return provider.KindInvalidCode
	case 45011, 45009:
		return provider.KindRateLimited
	case 40001: // getToken: wrong AppSecret [D]; QQ has no business call with our tokens.
		return provider.KindMisconfigured
	case 40002, 40013: // wrong grant_type (our bug), unknown appid [D getToken; U jscode2session]
		return provider.KindMisconfigured
	case 40125, 41002, 41004: // [U] WeChat's wrong AppSecret, missing appid, missing secret
		return provider.KindMisconfigured
	}
	return provider.KindUnknown
}
