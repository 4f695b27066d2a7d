package wxcrypto

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ and run with every
// `go test`. Fuzz with e.g.
//
//	go test -run='^$' -fuzz='^FuzzDecrypt$' -fuzztime=60s ./internal/wxcrypto

// fuzzKey is a fixed session key so that fuzzed plaintexts go through the
// real decryption path.
const fuzzKey = "o0q0otL8aEzpcZL/FT9WsQ=="

// FuzzDecrypt feeds arbitrary strings as session key, data, iv and appid.
func FuzzDecrypt(f *testing.F) {
	f.Fuzz(func(t *testing.T, sessionKey, encryptedData, iv, appID string) {
		plain, err := Decrypt(sessionKey, encryptedData, iv, appID)
		if err != nil {
			checkError(t, err, sessionKey)
			return
		}
		var probe struct {
			Watermark struct {
				AppID string `json:"appid"`
			} `json:"watermark"`
		}
		if err := json.Unmarshal(plain, &probe); err != nil || probe.Watermark.AppID != appID || appID == "" {
			t.Fatalf("accepted data whose watermark is not ours: %q", plain)
		}
	})
}

// FuzzDecryptUserInfo encrypts arbitrary plaintexts correctly and decodes them.
func FuzzDecryptUserInfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, plaintext []byte) {
		data, iv, err := Encrypt(fuzzKey, plaintext)
		if err != nil {
			t.Fatal(err)
		}
		info, err := DecryptUserInfo(fuzzKey, data, iv, ourAppID)
		if err != nil {
			checkError(t, err, fuzzKey)
			if errors.Is(err, ErrSessionKey) {
				t.Fatalf("valid key refused: %v", err)
			}
			return
		}
		if info.Watermark.AppID != ourAppID {
			t.Fatalf("accepted watermark appid %q", info.Watermark.AppID)
		}
		plain, err := Decrypt(fuzzKey, data, iv, ourAppID)
		if err != nil || string(plain) != string(plaintext) {
			t.Fatalf("round trip changed the plaintext: %v", err)
		}
	})
}

// FuzzDecryptPhone encrypts arbitrary plaintexts correctly and decodes them.
func FuzzDecryptPhone(f *testing.F) {
	f.Fuzz(func(t *testing.T, plaintext []byte) {
		data, iv, err := Encrypt(fuzzKey, plaintext)
		if err != nil {
			t.Fatal(err)
		}
		info, err := DecryptPhone(fuzzKey, data, iv, ourAppID)
		if err != nil {
			checkError(t, err, fuzzKey)
			return
		}
		if info.Watermark.AppID != ourAppID {
			t.Fatalf("accepted watermark appid %q", info.Watermark.AppID)
		}
		// What decodes must encode again.
		if _, err := json.Marshal(info); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzVerifyRawData checks that only the right signature verifies.
func FuzzVerifyRawData(f *testing.F) {
	f.Fuzz(func(t *testing.T, rawData, signature, sessionKey string) {
		ok := VerifyRawData(rawData, signature, sessionKey)
		want := RawDataSignature(rawData, sessionKey)
		if ok && strings.ToLower(signature) != want {
			t.Fatalf("accepted a wrong signature")
		}
		if ok && !ValidSessionKey(sessionKey) {
			t.Fatalf("accepted a signature under an invalid session key")
		}
		if VerifyRawData(rawData, want, sessionKey) != ValidSessionKey(sessionKey) {
			t.Fatalf("the right signature under a valid key must verify, under an invalid key must not")
		}
		if VerifySessionSignature(sessionKey, []byte(rawData), signature) &&
			signature != SessionSignature(sessionKey, []byte(rawData)) {
			t.Fatalf("VerifySessionSignature accepted a wrong signature")
		}
	})
}

// checkError asserts the error contract: an *Error of one known kind, with
// a text that never quotes a valid session key.
func checkError(t *testing.T, err error, sessionKey string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not a *wxcrypto.Error: %v", err)
	}
	kinds := 0
	for _, k := range []error{ErrMalformed, ErrStaleSessionKey, ErrAppIDMismatch, ErrSessionKey} {
		if errors.Is(err, k) {
			kinds++
		}
	}
	if kinds != 1 {
		t.Fatalf("error of %d kinds: %v", kinds, err)
	}
	if e.DemoCode() > DemoIllegalAESKey || e.DemoCode() < DemoDecodeBase64Error {
		t.Fatalf("demo code %d", e.DemoCode())
	}
	if ValidSessionKey(sessionKey) && strings.Contains(err.Error(), sessionKey) {
		t.Fatalf("error quotes the session key: %v", err)
	}
}
