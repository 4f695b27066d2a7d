package wxcrypto

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // WeChat's rawData signature is defined with SHA-1.
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// RawDataSignature returns WeChat's signature of wx.getUserInfo's rawData:
// lowercase hex of sha1(rawData + sessionKey).
func RawDataSignature(rawData, sessionKey string) string {
	sum := sha1.Sum([]byte(rawData + sessionKey)) //nolint:gosec // defined by WeChat
	return hex.EncodeToString(sum[:])
}

// VerifyRawData reports whether signature is WeChat's signature of rawData
// under sessionKey, comparing in constant time; hex case does not matter.
// It is false whenever sessionKey is not a valid session_key (an empty key
// would let anyone sign) or signature is empty.
func VerifyRawData(rawData, signature, sessionKey string) bool {
	if signature == "" || !ValidSessionKey(sessionKey) {
		return false
	}
	want := RawDataSignature(rawData, sessionKey)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(signature))) == 1
}

// SessionSignature returns the signature that checkSessionKey and
// resetUserSessionKey expect: lowercase hex of HMAC-SHA256 keyed with the
// session_key string's own bytes (not base64-decoded) over body, which is
// empty for those GET calls.
func SessionSignature(sessionKey string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(sessionKey))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySessionSignature reports, in constant time, whether signature is
// exactly [SessionSignature](sessionKey, body). Like WeChat it wants
// lowercase hex; an empty sessionKey verifies nothing.
func VerifySessionSignature(sessionKey string, body []byte, signature string) bool {
	if sessionKey == "" || signature == "" {
		return false
	}
	want := SessionSignature(sessionKey, body)
	return subtle.ConstantTimeCompare([]byte(want), []byte(signature)) == 1
}
