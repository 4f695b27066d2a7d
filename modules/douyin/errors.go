package douyin

import (
	"fmt"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Platform is the platform name apps are configured with.
const Platform = config.PlatformDouyin

// TransportError is a call that got no answer (timeout, connection refused,
// TLS, cancelled context): provider.KindUnavailable. It never holds a URL.
type TransportError = platformhttp.TransportError

// ResponseError is an answer that could not be used (HTTP error without
// err_no, empty or non-JSON body, too large, a success without the ids its
// codes promise): provider.KindUnavailable, or KindRateLimited for HTTP 429.
type ResponseError = platformhttp.ResponseError

// Error is an answer from Douyin with a non-zero err_no, or the same refusal
// made locally for an obviously bad argument (no code at all: 40014).
type Error struct {
	// Path is the API path that answered, e.g. "/api/apps/v2/jscode2session".
	Path string
	// Code is Douyin's err_no.
	Code int
	// Message is Douyin's err_tips (secrets scrubbed).
	Message string
	// LogID is Douyin's log_id, what its support asks for.
	LogID string
}

// Error names the path, err_no, kind, err_tips and log_id.
func (e *Error) Error() string {
	s := fmt.Sprintf("douyin %s: err_no %d (%s): %s", e.Path, e.Code, e.Kind(), e.Message)
	if e.LogID != "" {
		s += " (log_id " + e.LogID + ")"
	}
	return s
}

// Kind classifies the err_no; see the package doc for the table.
func (e *Error) Kind() provider.Kind { return kindOf(e.Code) }

// ProviderError names the platform and classifies the error.
func (e *Error) ProviderError() (string, provider.Kind) { return Platform, e.Kind() }

var _ provider.Classifier = (*Error)(nil)

// kindOf classifies an err_no [D older table + C]. The v2 table was not read
// in full: a rate-limit err_no is [U], so only HTTP 429 counts as one.
func kindOf(code int) provider.Kind {
	switch code {
	case -1:
		return provider.KindUnavailable
	case 40018, 40019: // bad code, bad anonymous_code: invalid, used or expired
		return provider.KindInvalidCode
	case 40014: // bad parameters: the only ones a device controls are the codes
		return provider.KindInvalidCode
	case 40015, 40017, 40020: // bad appid, bad secret, bad grant_type
		return provider.KindMisconfigured
	}
	return provider.KindUnknown
}
