// Package wxcrypto decrypts and signs WeChat open data exactly as WeChat's
// server APIs expect (see docs/wechat-api.md in the shared docs):
//
//   - [Decrypt], [DecryptUserInfo] and [DecryptPhone] open the encryptedData
//   - iv a device hands over (AES-128-CBC, PKCS#7, key = the user's
//     session_key) and reject it unless the watermark names our appid;
//   - [Open] decrypts the same way without looking for a watermark, for
//     platforms that use WeChat's algorithm (Douyin);
//   - [Encrypt] does the opposite, for the emulator and for tests;
//   - [VerifyRawData] checks wx.getUserInfo's rawData signature;
//   - [SessionSignature] signs checkSessionKey/resetUserSessionKey calls.
//
// Every function is pure; nothing here logs. Errors are [*Error] values
// that wrap one of four sentinels, so callers branch with errors.Is:
//
//   - [ErrMalformed]: the client sent something that is not well-formed
//     (empty, not strict base64, '+' turned into a space by form encoding,
//     wrong lengths). The client's fault: a 400.
//   - [ErrStaleSessionKey]: well-formed data that does not decrypt to
//     WeChat open data with the stored session_key. Almost always the
//     device called wx.login after producing the data, so the stored key
//     is older than the one WeChat used: the client must call wx.login,
//     log in again, and produce the data again. A 409-like conflict.
//   - [ErrAppIDMismatch]: the data decrypts but its watermark names another
//     mini program. The client's fault (or an attack): a 400/403.
//   - [ErrSessionKey]: the session_key we were given (from our own store)
//     is not 16 bytes of base64. A server-side problem, not the client's: a 500.
//
// No error text contains key material (session_key, plaintext); the texts
// are written so they can be shown to the client as they are.
package wxcrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Sizes of the pieces of WeChat open-data encryption.
const (
	// KeySize is the decoded size of a session_key (AES-128).
	KeySize = 16
	// IVSize is the decoded size of an iv.
	IVSize = aes.BlockSize
	// EncodedKeySize is the length of a session_key or an iv in base64.
	EncodedKeySize = 24
)

// The sentinels every [*Error] wraps; compare with errors.Is.
var (
	// ErrMalformed means the client's encryptedData or iv is not well-formed.
	ErrMalformed = errors.New("malformed encrypted data")
	// ErrStaleSessionKey means the data does not decrypt with the stored
	// session_key: the device called wx.login after producing it.
	ErrStaleSessionKey = errors.New("the encrypted data does not decrypt with the current session_key; " +
		"the device probably called wx.login after producing it: call wx.login, log in again, then produce the data again")
	// ErrAppIDMismatch means the data's watermark names another mini program.
	ErrAppIDMismatch = errors.New("the encrypted data belongs to another mini program (watermark appid differs)")
	// ErrSessionKey means the stored session_key is unusable (not 16 bytes
	// of base64): a server-side problem, never the client's.
	ErrSessionKey = errors.New("the stored session_key is not a 16-byte base64 key")
)

// Error codes of WeChat's own decryption demo (WXBizDataCrypt), for
// clients that know them; see [Error.DemoCode].
const (
	DemoIllegalAESKey     = -41001 // session_key is not 24 base64 chars
	DemoIllegalIV         = -41002 // iv is not 24 base64 chars
	DemoIllegalBuffer     = -41003 // decryption failed or appid mismatch
	DemoDecodeBase64Error = -41004 // base64 decoding failed
)

// Error is the error every function here returns. It wraps one of the
// sentinels ([ErrMalformed], [ErrStaleSessionKey], [ErrAppIDMismatch],
// [ErrSessionKey]) and says which input failed and why.
type Error struct {
	// Kind is the sentinel this error wraps.
	Kind error
	// Field names the input at fault: "encryptedData", "iv", "sessionKey",
	// "plaintext" (after decryption) or "watermark".
	Field string
	// Detail says what exactly is wrong, without any key material.
	Detail string
	code   int
}

// Error returns the sentinel's text followed by the detail.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

// Unwrap returns the sentinel, so errors.Is(err, ErrMalformed) works.
func (e *Error) Unwrap() error { return e.Kind }

// DemoCode returns the matching error code of WeChat's decryption demo
// (-41001 … -41004).
func (e *Error) DemoCode() int { return e.code }

func fail(kind error, field string, code int, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Detail: fmt.Sprintf(format, args...), code: code}
}

// Watermark is the provenance stamp inside every piece of open data.
type Watermark struct {
	// Timestamp comes first, as in WeChat's plaintext (the emulator encodes with this type).
	Timestamp int64  `json:"timestamp"`
	AppID     string `json:"appid"`
}

// UserInfo is the decrypted data of wx.getUserInfo / wx.getUserProfile.
// Since 2021 devices hand over an anonymous profile ("微信用户", grey avatar).
type UserInfo struct {
	OpenID    string `json:"openId"`
	NickName  string `json:"nickName"`
	Gender    int    `json:"gender"` // 0 unknown, 1 male, 2 female
	Language  string `json:"language"`
	City      string `json:"city"`
	Province  string `json:"province"`
	Country   string `json:"country"`
	AvatarURL string `json:"avatarUrl"`
	// UnionID is present only for apps bound to an Open Platform account,
	// and never in getUserProfile's data.
	UnionID   string    `json:"unionId,omitempty"`
	Watermark Watermark `json:"watermark"`
}

// PhoneInfo is the decrypted data of the legacy phone-number button; it is
// also the "phone_info" object of getuserphonenumber's answer.
type PhoneInfo struct {
	// PhoneNumber carries the country code for numbers outside China.
	PhoneNumber     string      `json:"phoneNumber"`
	PurePhoneNumber string      `json:"purePhoneNumber"`
	CountryCode     CountryCode `json:"countryCode"`
	Watermark       Watermark   `json:"watermark"`
}

// CountryCode is a calling code such as "86". WeChat sends it as a string,
// its documentation shows a number: both decode. It encodes as a string.
type CountryCode string

// UnmarshalJSON accepts "86", 86 and null.
func (c *CountryCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = CountryCode(s)
		return nil
	}
	if len(b) == 0 || len(b) > 8 {
		return errors.New("countryCode must be a string or a small whole number")
	}
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return errors.New("countryCode must be a string or a small whole number")
		}
	}
	*c = CountryCode(b)
	return nil
}

// Decrypt opens open data handed over by a device and returns its JSON
// plaintext once the watermark's appid is known to equal appID.
//
// sessionKey is the user's stored session_key (base64, 24 chars);
// encryptedData and iv are what the device sent, in strict standard
// base64. A sessionKey that is not 16 bytes of base64 gives [ErrSessionKey]
// (our problem); bad client input gives [ErrMalformed]; data that does not
// decrypt to a JSON object with a watermark gives [ErrStaleSessionKey]; a
// foreign watermark gives [ErrAppIDMismatch]. An empty appID matches nothing.
func Decrypt(sessionKey, encryptedData, iv, appID string) ([]byte, error) {
	plain, err := Open(sessionKey, encryptedData, iv)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Watermark *struct {
			AppID *string `json:"appid"`
		} `json:"watermark"`
	}
	if json.Unmarshal(plain, &probe) != nil {
		return nil, fail(ErrStaleSessionKey, "plaintext", DemoIllegalBuffer, "the decrypted data is not a JSON object")
	}
	if probe.Watermark == nil || probe.Watermark.AppID == nil {
		return nil, fail(ErrStaleSessionKey, "watermark", DemoIllegalBuffer, "the decrypted data has no watermark appid")
	}
	if got := *probe.Watermark.AppID; appID == "" || got != appID {
		return nil, fail(ErrAppIDMismatch, "watermark", DemoIllegalBuffer,
			"watermark appid %q is not this mini program's", printable(got, 64))
	}
	return plain, nil
}

// Open decrypts open data the way [Decrypt] does — AES-128-CBC under the
// session_key, strict PKCS#7 — and returns the plaintext once it is a JSON
// object, without looking for a watermark: for platforms that use WeChat's
// algorithm but whose plaintext may carry none (Douyin). Its errors are
// those of Decrypt.
func Open(sessionKey, encryptedData, iv string) ([]byte, error) {
	key, err := decodeSessionKey(sessionKey)
	if err != nil {
		return nil, err
	}
	ivBytes, err := decodeClient("iv", iv, DemoIllegalIV)
	if err != nil {
		return nil, err
	}
	if len(iv) != EncodedKeySize || len(ivBytes) != IVSize {
		return nil, fail(ErrMalformed, "iv", DemoIllegalIV,
			"iv must be %d base64 characters (%d bytes), it has %d characters", EncodedKeySize, IVSize, len(iv))
	}
	data, err := decodeClient("encryptedData", encryptedData, DemoDecodeBase64Error)
	if err != nil {
		return nil, err
	}
	if len(data)%aes.BlockSize != 0 {
		return nil, fail(ErrMalformed, "encryptedData", DemoDecodeBase64Error,
			"encryptedData must decode to a multiple of %d bytes, it decodes to %d", aes.BlockSize, len(data))
	}

	block, err := aes.NewCipher(key)
	if err != nil { // unreachable: the key has 16 bytes
		return nil, fail(ErrSessionKey, "sessionKey", DemoIllegalAESKey, "%v", err)
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, ivBytes).CryptBlocks(plain, data)
	plain, ok := unpad(plain)
	if !ok {
		return nil, fail(ErrStaleSessionKey, "plaintext", DemoIllegalBuffer, "the padding is invalid after decryption")
	}
	var object map[string]json.RawMessage
	if !json.Valid(plain) || json.Unmarshal(plain, &object) != nil || object == nil {
		return nil, fail(ErrStaleSessionKey, "plaintext", DemoIllegalBuffer, "the decrypted data is not a JSON object")
	}
	return plain, nil
}

// DecryptUserInfo is [Decrypt] followed by decoding the user's profile.
// Decrypted data of the wrong shape gives [ErrMalformed].
func DecryptUserInfo(sessionKey, encryptedData, iv, appID string) (UserInfo, error) {
	var info UserInfo
	err := decryptInto(sessionKey, encryptedData, iv, appID, "user info", &info)
	return info, err
}

// DecryptPhone is [Decrypt] followed by decoding the phone number.
// Decrypted data of the wrong shape gives [ErrMalformed].
func DecryptPhone(sessionKey, encryptedData, iv, appID string) (PhoneInfo, error) {
	var info PhoneInfo
	err := decryptInto(sessionKey, encryptedData, iv, appID, "phone information", &info)
	return info, err
}

func decryptInto(sessionKey, encryptedData, iv, appID, what string, v any) error {
	plain, err := Decrypt(sessionKey, encryptedData, iv, appID)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(plain, v); err != nil {
		// json's messages name fields and types, never values.
		return fail(ErrMalformed, "plaintext", DemoIllegalBuffer, "the decrypted data is not %s: %v", what, err)
	}
	return nil
}

// Encrypt seals plaintext the way WeChat does for a device, under
// sessionKey and a fresh random iv. Only the emulator and tests need it.
// A sessionKey that is not 16 bytes of base64 gives [ErrSessionKey].
func Encrypt(sessionKey string, plaintext []byte) (encryptedData, iv string, err error) {
	key, err := decodeSessionKey(sessionKey)
	if err != nil {
		return "", "", err
	}
	block, err := aes.NewCipher(key)
	if err != nil { // unreachable: the key has 16 bytes
		return "", "", fail(ErrSessionKey, "sessionKey", DemoIllegalAESKey, "%v", err)
	}
	ivBytes := make([]byte, IVSize)
	_, _ = rand.Read(ivBytes) // never fails (crypto/rand aborts the program instead)
	padded := pad(plaintext)
	cipher.NewCBCEncrypter(block, ivBytes).CryptBlocks(padded, padded)
	return base64.StdEncoding.EncodeToString(padded), base64.StdEncoding.EncodeToString(ivBytes), nil
}

// NewSessionKey returns a fresh random session_key: 16 random bytes in
// base64 (24 characters), as WeChat issues them.
func NewSessionKey() string {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// ValidSessionKey reports whether s is a usable session_key: 24 characters
// of strict base64 that decode to 16 bytes.
func ValidSessionKey(s string) bool {
	_, err := decodeSessionKey(s)
	return err == nil
}

func decodeSessionKey(s string) ([]byte, error) {
	// The detail never quotes the key.
	if len(s) != EncodedKeySize {
		return nil, fail(ErrSessionKey, "sessionKey", DemoIllegalAESKey,
			"it must be %d base64 characters, it has %d", EncodedKeySize, len(s))
	}
	key, err := strictDecode(s)
	if err != nil || len(key) != KeySize {
		return nil, fail(ErrSessionKey, "sessionKey", DemoIllegalAESKey, "it is not standard base64 of %d bytes", KeySize)
	}
	return key, nil
}

// decodeClient decodes a base64 value sent by the client, explaining what
// is wrong when it is not strict standard base64.
func decodeClient(field, s string, code int) ([]byte, error) {
	if s == "" {
		return nil, fail(ErrMalformed, field, code, "%s is empty", field)
	}
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return nil, fail(ErrMalformed, field, code,
			"%s contains a space (at offset %d): a '+' of the base64 became a space because the client form-encoded "+
				"the value without escaping it; send the request body as JSON (Content-Type: application/json)", field, i)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isStdBase64(c) {
			continue
		}
		switch {
		case c == '-' || c == '_':
			return nil, fail(ErrMalformed, field, code,
				"%s uses URL-safe base64 ('-' or '_' at offset %d); send it exactly as WeChat gave it", field, i)
		case c == '%':
			return nil, fail(ErrMalformed, field, code,
				"%s is percent-encoded (%% at offset %d); send it exactly as WeChat gave it, in a JSON body", field, i)
		default:
			return nil, fail(ErrMalformed, field, code,
				"%s is not standard base64: unexpected %s at offset %d", field, describeByte(c), i)
		}
	}
	b, err := strictDecode(s)
	if err != nil {
		return nil, fail(ErrMalformed, field, code, "%s is not valid base64 (wrong length or padding)", field)
	}
	if len(b) == 0 {
		return nil, fail(ErrMalformed, field, code, "%s is empty", field)
	}
	return b, nil
}

// strictDecode decodes standard padded base64 and refuses the line breaks
// and non-zero trailing bits that encoding/base64 would otherwise let by.
func strictDecode(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if !isStdBase64(s[i]) {
			return nil, base64.CorruptInputError(i)
		}
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}

func isStdBase64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

func describeByte(c byte) string {
	switch {
	case c == '\n':
		return "line break"
	case c == '\r':
		return "carriage return"
	case c == '\t':
		return "tab"
	case c >= 0x21 && c < 0x7f:
		return fmt.Sprintf("character %q", c)
	default:
		return fmt.Sprintf("byte 0x%02x", c)
	}
}

// printable shortens s to at most n bytes of valid UTF-8 for an error text.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, string(utf8.RuneError))
}

// pad appends PKCS#7 padding to a copy of b.
func pad(b []byte) []byte {
	n := aes.BlockSize - len(b)%aes.BlockSize
	out := make([]byte, len(b)+n)
	copy(out, b)
	for i := len(b); i < len(out); i++ {
		out[i] = byte(n)
	}
	return out
}

// unpad strips PKCS#7 padding, checking it strictly: 1..16 bytes, all equal.
func unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 || len(b)%aes.BlockSize != 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n < 1 || n > aes.BlockSize || n > len(b) {
		return nil, false
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, false
		}
	}
	return b[:len(b)-n], true
}
