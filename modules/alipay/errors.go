package alipay

import (
	"fmt"
	"strings"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// Platform is the platform name apps are configured with.
const Platform = config.PlatformAlipay

// TransportError is a call that got no answer (timeout, connection refused,
// TLS, cancelled context): provider.KindUnavailable.
type TransportError = platformhttp.TransportError

// ResponseError is an answer that could not be used (HTTP error, empty or
// non-JSON body, too large, no response node, a success without user id):
// provider.KindUnavailable, or KindRateLimited for HTTP 429.
type ResponseError = platformhttp.ResponseError

// Error is Alipay's refusal: an error_response (or a method response with
// a code other than 10000), or the code of my.getPhoneNumber's decrypted
// content. Codes are the gateway's ("40002"); SubCode says what exactly
// ("isv.code-invalid").
type Error struct {
	// Method is the gateway method, e.g. "alipay.system.oauth.token", or
	// "my.getPhoneNumber" for the phone content.
	Method  string
	Code    string
	Msg     string
	SubCode string
	SubMsg  string
}

// Error names the method, codes, kind and messages.
func (e *Error) Error() string {
	return fmt.Sprintf("alipay %s: %s %s (%s): %s %s", e.Method, e.Code, e.SubCode, e.Kind(), e.Msg, e.SubMsg)
}

// Kind classifies the codes; see the package doc for the table.
func (e *Error) Kind() provider.Kind { return kindOf(e.Code, e.SubCode) }

// ProviderError names the platform and classifies the error.
func (e *Error) ProviderError() (string, provider.Kind) { return Platform, e.Kind() }

// SignatureError is an answer whose signature is missing or does not verify
// with the app's alipay_public_key: the key is wrong (an operator must act),
// or something between us and Alipay changed the answer. It is
// provider.KindMisconfigured and matches ErrBadSignature.
type SignatureError struct {
	Method  string
	Problem string
}

// Error names the method and the problem.
func (e *SignatureError) Error() string {
	return "alipay " + e.Method + ": answer refused: " + e.Problem + "; check the app's alipay_public_key"
}

// Unwrap returns ErrBadSignature.
func (e *SignatureError) Unwrap() error { return ErrBadSignature }

// ProviderError classifies the error as misconfigured.
func (e *SignatureError) ProviderError() (string, provider.Kind) {
	return Platform, provider.KindMisconfigured
}

var (
	_ provider.Classifier = (*Error)(nil)
	_ provider.Classifier = (*SignatureError)(nil)
)

// kindOf classifies gateway codes [S smartwalle alipay_type.go] and
// sub_codes [C].
func kindOf(code, subCode string) provider.Kind {
	switch {
	case subCode == "isv.code-invalid": // expired, used, mistyped or another app's code [C]
		return provider.KindInvalidCode
	case strings.HasPrefix(subCode, "isp."), code == "20000": // Alipay's own failure
		return provider.KindUnavailable
	case code == "40005": // call limit [S]
		return provider.KindRateLimited
	case subCode == "isv.invalid-auth-relations": // the app lacks the capability (phone)
		return provider.KindMisconfigured
	}
	switch code {
	case "20001", "40001", "40002", "40006":
		// Insufficient token permissions, a missing or invalid parameter
		// (app_id, signature, charset, timestamp, method, …), insufficient
		// permissions: our request or the app's setup is wrong.
		return provider.KindMisconfigured
	}
	return provider.KindUnknown
}
