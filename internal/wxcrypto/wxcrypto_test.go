package wxcrypto

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// WeChat's published decryption demo (WXBizDataCrypt), checked
// independently with `openssl enc -d -aes-128-cbc`.
const (
	demoAppID         = "wx4f4bc4dec97d474b"
	demoSessionKey    = "tiihtNczf5v6AKRyjwEUhQ=="
	demoIV            = "r7BXXKkLb8qrSNn05n0qiA=="
	demoEncryptedData = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+" +
		"3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6" +
		"/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs" +
		"8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns" +
		"/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG" +
		"20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
)

const ourAppID = "wx0000000000000dev"

func TestDecryptWeChatDemoVector(t *testing.T) {
	info, err := DecryptUserInfo(demoSessionKey, demoEncryptedData, demoIV, demoAppID)
	if err != nil {
		t.Fatalf("DecryptUserInfo: %v", err)
	}
	want := UserInfo{
		OpenID: "oGZUI0egBJY1zhBYw2KhdUfwVJJE", NickName: "Band", Gender: 1, Language: "zh_CN",
		City: "Guangzhou", Province: "Guangdong", Country: "CN",
		AvatarURL: "http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0",
		UnionID:   "ocMvos6NjeKLIBqg5Mr9QjxrP1FA",
		Watermark: Watermark{AppID: demoAppID, Timestamp: 1477314187},
	}
	if info != want {
		t.Fatalf("got %+v\nwant %+v", info, want)
	}

	// The same data is refused for any other mini program.
	_, err = Decrypt(demoSessionKey, demoEncryptedData, demoIV, ourAppID)
	assertKind(t, err, ErrAppIDMismatch, DemoIllegalBuffer)
}

func TestRawDataSignatureWeChatDemoVector(t *testing.T) {
	// From WeChat's documentation of wx.getUserInfo's signature; checked with sha1sum.
	const (
		rawData    = `{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}`
		sessionKey = "HyVFkGl5F5OQWJZZaNzBBg=="
		signature  = "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
	)
	if got := RawDataSignature(rawData, sessionKey); got != signature {
		t.Fatalf("RawDataSignature = %s, want %s", got, signature)
	}
	cases := []struct {
		name                string
		raw, signature, key string
		want                bool
	}{
		{"valid", rawData, signature, sessionKey, true},
		{"upper-case hex", rawData, strings.ToUpper(signature), sessionKey, true},
		{"raw data changed", strings.Replace(rawData, "Band", "Bond", 1), signature, sessionKey, false},
		{"other session key", rawData, signature, demoSessionKey, false},
		{"empty signature", rawData, "", sessionKey, false},
		{"fake signature", rawData, "fake_sign", sessionKey, false},
		{"empty session key forges nothing", rawData, RawDataSignature(rawData, ""), "", false},
		{"malformed session key", rawData, RawDataSignature(rawData, "abc"), "abc", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := VerifyRawData(c.raw, c.signature, c.key); got != c.want {
				t.Fatalf("VerifyRawData = %v, want %v", got, c.want)
			}
		})
	}
}

func TestSessionSignaturePublishedVector(t *testing.T) {
	const key = "o0q0otL8aEzpcZL/FT9WsQ=="
	cases := []struct{ body, want string }{
		{`{"foo":"bar"}`, "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"},
		// GET calls sign the empty body; checked with `openssl dgst -sha256 -hmac`.
		{"", "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"},
	}
	for _, c := range cases {
		if got := SessionSignature(key, []byte(c.body)); got != c.want {
			t.Errorf("SessionSignature(%q) = %s, want %s", c.body, got, c.want)
		}
		if !VerifySessionSignature(key, []byte(c.body), c.want) {
			t.Errorf("VerifySessionSignature(%q) refused the right signature", c.body)
		}
		if VerifySessionSignature(key, []byte(c.body), strings.ToUpper(c.want)) {
			t.Errorf("VerifySessionSignature(%q) accepted upper-case hex, which WeChat refuses", c.body)
		}
	}
	// Keyed by the string itself, not its decoded bytes.
	raw, _ := base64.StdEncoding.DecodeString(key)
	if SessionSignature(string(raw), nil) == SessionSignature(key, nil) {
		t.Fatal("the key must be the session_key's ASCII bytes")
	}
	if VerifySessionSignature("", nil, SessionSignature("", nil)) {
		t.Fatal("an empty session key must verify nothing")
	}
}

func TestRoundTrip(t *testing.T) {
	key := NewSessionKey()
	if len(key) != EncodedKeySize || !ValidSessionKey(key) {
		t.Fatalf("NewSessionKey gave an invalid key of %d chars", len(key))
	}
	if NewSessionKey() == key {
		t.Fatal("NewSessionKey repeats itself")
	}
	user := UserInfo{OpenID: "o1", NickName: "微信用户 / +", Gender: 2, AvatarURL: "https://x/y", UnionID: "u1",
		Watermark: Watermark{AppID: ourAppID, Timestamp: 1700000000}}
	plain, _ := json.Marshal(user)
	// Every plaintext length around the block size, including exact multiples (a full padding block).
	for n := 0; n <= 40; n++ {
		body := append([]byte(nil), plain...)
		body = append(body[:len(body)-1], []byte(`,"pad":"`+strings.Repeat("x", n)+`"}`)...)
		data, iv, err := Encrypt(key, body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decrypt(key, data, iv, ourAppID)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if string(got) != string(body) {
			t.Fatalf("n=%d: round trip changed the plaintext", n)
		}
	}
	data, iv, _ := Encrypt(key, plain)
	got, err := DecryptUserInfo(key, data, iv, ourAppID)
	if err != nil || got != user {
		t.Fatalf("DecryptUserInfo = %+v, %v", got, err)
	}
}

func TestDecryptPhoneCountryCodeStringOrNumber(t *testing.T) {
	key := NewSessionKey()
	for _, cc := range []string{`"86"`, `86`} {
		plain := `{"phoneNumber":"13800000000","purePhoneNumber":"13800000000","countryCode":` + cc +
			`,"watermark":{"timestamp":1637744274,"appid":"` + ourAppID + `"}}`
		data, iv, _ := Encrypt(key, []byte(plain))
		got, err := DecryptPhone(key, data, iv, ourAppID)
		if err != nil {
			t.Fatalf("countryCode %s: %v", cc, err)
		}
		want := PhoneInfo{PhoneNumber: "13800000000", PurePhoneNumber: "13800000000", CountryCode: "86",
			Watermark: Watermark{AppID: ourAppID, Timestamp: 1637744274}}
		if got != want {
			t.Fatalf("countryCode %s: got %+v", cc, got)
		}
	}
	// Encodes as a string, as WeChat sends it.
	b, _ := json.Marshal(PhoneInfo{CountryCode: "86"})
	if !strings.Contains(string(b), `"countryCode":"86"`) {
		t.Fatalf("countryCode encodes as %s", b)
	}
	for _, bad := range []string{`true`, `-1`, `8.6`, `{}`, `[]`, `123456789`} {
		var c CountryCode
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("countryCode %s decoded as %q", bad, c)
		}
	}
}

func TestDecryptWrongKeyIsStaleNotPanic(t *testing.T) {
	old := NewSessionKey()
	data, iv, _ := Encrypt(old, []byte(`{"openId":"o1","watermark":{"appid":"`+ourAppID+`","timestamp":1}}`))
	// The device called wx.login again: the stored key is now another one.
	// Many keys, so that some of them produce valid-looking padding by chance.
	for i := 0; i < 2000; i++ {
		_, err := Decrypt(NewSessionKey(), data, iv, ourAppID)
		assertKind(t, err, ErrStaleSessionKey, DemoIllegalBuffer)
	}
	_, err := Decrypt(NewSessionKey(), data, iv, ourAppID)
	if !strings.Contains(err.Error(), "wx.login") {
		t.Fatalf("the stale-key error must tell the client to call wx.login: %v", err)
	}
	// Also with a wrong iv: the first block garbles.
	_, err = Decrypt(old, data, NewSessionKey(), ourAppID)
	assertKind(t, err, ErrStaleSessionKey, DemoIllegalBuffer)
}

func TestDecryptPlaintextWithoutWatermarkIsStale(t *testing.T) {
	key := NewSessionKey()
	for _, plain := range []string{``, `not json`, `[1,2]`, `"s"`, `{}`, `{"watermark":{}}`, `{"watermark":null}`,
		`{"watermark":{"appid":null}}`, `{"watermark":{"appid":1}}`, `{"a":1}{"b":2}`} {
		data, iv, _ := Encrypt(key, []byte(plain))
		_, err := Decrypt(key, data, iv, ourAppID)
		if !errors.Is(err, ErrStaleSessionKey) {
			t.Errorf("plaintext %q: got %v, want ErrStaleSessionKey", plain, err)
		}
	}
}

func TestDecryptForeignWatermark(t *testing.T) {
	key := NewSessionKey()
	for _, appid := range []string{"wx1111111111111111", "", strings.ToUpper(ourAppID), ourAppID + " "} {
		data, iv, _ := Encrypt(key, []byte(`{"watermark":{"appid":"`+appid+`","timestamp":1}}`))
		_, err := DecryptUserInfo(key, data, iv, ourAppID)
		assertKind(t, err, ErrAppIDMismatch, DemoIllegalBuffer)
	}
	// An unconfigured appid matches nothing, not even an empty watermark appid.
	data, iv, _ := Encrypt(key, []byte(`{"watermark":{"appid":"","timestamp":1}}`))
	_, err := Decrypt(key, data, iv, "")
	assertKind(t, err, ErrAppIDMismatch, DemoIllegalBuffer)
}

func TestDecryptWrongShapeIsMalformed(t *testing.T) {
	key := NewSessionKey()
	data, iv, _ := Encrypt(key, []byte(`{"gender":"male","watermark":{"appid":"`+ourAppID+`","timestamp":1}}`))
	_, err := DecryptUserInfo(key, data, iv, ourAppID)
	assertKind(t, err, ErrMalformed, DemoIllegalBuffer)
	if strings.Contains(err.Error(), "male") {
		t.Fatalf("the error quotes decrypted data: %v", err)
	}
}

func TestDecryptMalformedInput(t *testing.T) {
	key := NewSessionKey()
	data, iv, _ := Encrypt(key, []byte(`{"watermark":{"appid":"`+ourAppID+`","timestamp":1}}`))
	b64 := base64.StdEncoding.EncodeToString
	cases := []struct {
		name        string
		data, iv    string
		field, hint string
		code        int
	}{
		{"empty data", "", iv, "encryptedData", "empty", DemoDecodeBase64Error},
		{"empty iv", data, "", "iv", "empty", DemoIllegalIV},
		{"data not base64", "!!!!", iv, "encryptedData", "not standard base64", DemoDecodeBase64Error},
		{"data truncated base64", data[:len(data)-3], iv, "encryptedData", "not valid base64", DemoDecodeBase64Error},
		{"data without padding", strings.TrimRight(b64([]byte("0123456789abcdef0")), "="), iv, "encryptedData", "not valid base64", DemoDecodeBase64Error},
		{"data url-safe", strings.NewReplacer("+", "-", "/", "_").Replace(data) + "-", iv, "encryptedData", "URL-safe", DemoDecodeBase64Error},
		{"data percent-encoded", "abc%2Bdef", iv, "encryptedData", "percent-encoded", DemoDecodeBase64Error},
		{"data with line break", data[:8] + "\n" + data[8:], iv, "encryptedData", "line break", DemoDecodeBase64Error},
		{"data decodes to nothing", "====", iv, "encryptedData", "", DemoDecodeBase64Error},
		{"data 15 bytes", b64(make([]byte, 15)), iv, "encryptedData", "multiple of 16", DemoDecodeBase64Error},
		{"data 17 bytes", b64(make([]byte, 17)), iv, "encryptedData", "multiple of 16", DemoDecodeBase64Error},
		{"data 1 byte", b64(make([]byte, 1)), iv, "encryptedData", "multiple of 16", DemoDecodeBase64Error},
		{"iv 15 bytes", data, b64(make([]byte, 15)), "iv", "24 base64 characters", DemoIllegalIV},
		{"iv 17 bytes", data, b64(make([]byte, 17)), "iv", "24 base64 characters", DemoIllegalIV},
		{"iv 32 bytes", data, b64(make([]byte, 32)), "iv", "24 base64 characters", DemoIllegalIV},
		{"iv non-zero trailing bits", data, iv[:21] + "B==", "iv", "not valid base64", DemoIllegalIV},
		{"iv form-encoded", data, strings.ReplaceAll(b64([]byte{0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe, 0xfb}), "+", " "), "iv", "form-encoded", DemoIllegalIV},
	}
	// A '+' turned into a space by form encoding, somewhere in real data.
	plus := data
	for !strings.Contains(plus, "+") {
		data2, iv2, _ := Encrypt(key, []byte(`{"watermark":{"appid":"`+ourAppID+`","timestamp":1}}`))
		plus, iv = data2, iv2
	}
	cases = append(cases, struct {
		name        string
		data, iv    string
		field, hint string
		code        int
	}{"data form-encoded", strings.ReplaceAll(plus, "+", " "), iv, "encryptedData", "send the request body as JSON", DemoDecodeBase64Error})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decrypt(key, c.data, c.iv, ourAppID)
			assertKind(t, err, ErrMalformed, c.code)
			var e *Error
			errors.As(err, &e)
			if e.Field != c.field {
				t.Errorf("Field = %q, want %q", e.Field, c.field)
			}
			if !strings.Contains(err.Error(), c.hint) {
				t.Errorf("error %q does not say %q", err, c.hint)
			}
		})
	}
	// The untouched data still decrypts.
	if _, err := Decrypt(key, plus, iv, ourAppID); err != nil {
		t.Fatal(err)
	}
}

func TestDecryptBadSessionKeyIsServerSide(t *testing.T) {
	data, iv, _ := Encrypt(NewSessionKey(), []byte(`{}`))
	secretish := "c2VjcmV0LWtleS1tYXRlcmlhbA=="
	for _, key := range []string{"", "abc", secretish, "tiihtNczf5v6AKRyjwEUhQ=", "tiihtNczf5v6AKRyjwEUhQ= ", "tiihtNczf5v6AKRyjwEUhR==", "tiihtNczf5v6AKRyjwEUhQ\n="} {
		_, err := Decrypt(key, data, iv, ourAppID)
		assertKind(t, err, ErrSessionKey, DemoIllegalAESKey)
		if errors.Is(err, ErrMalformed) {
			t.Fatal("a bad stored key must not look like the client's fault")
		}
		if key != "" && strings.Contains(err.Error(), key) {
			t.Fatalf("the error quotes the session key: %v", err)
		}
		if _, _, err := Encrypt(key, []byte(`{}`)); !errors.Is(err, ErrSessionKey) {
			t.Fatalf("Encrypt with key %q: %v", key, err)
		}
	}
}

func TestErrorsNeverQuoteKeyMaterial(t *testing.T) {
	key := NewSessionKey()
	plain := `{"secret":"p1a1n","watermark":{"appid":"wx2","timestamp":1}}`
	data, iv, _ := Encrypt(key, []byte(plain))
	for _, err := range []error{
		func() error { _, err := Decrypt(key, data, iv, ourAppID); return err }(),
		func() error { _, err := Decrypt(NewSessionKey(), data, iv, ourAppID); return err }(),
		func() error { _, err := Decrypt(key[:20], data, iv, ourAppID); return err }(),
	} {
		if err == nil {
			t.Fatal("expected an error")
		}
		for _, secret := range []string{key, key[:20], "p1a1n"} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q contains key material", err)
			}
		}
	}
}

func assertKind(t *testing.T, err, kind error, code int) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got %v, want %v", err, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not a *wxcrypto.Error", err)
	}
	if e.DemoCode() != code {
		t.Fatalf("DemoCode = %d, want %d (%v)", e.DemoCode(), code, err)
	}
	for _, other := range []error{ErrMalformed, ErrStaleSessionKey, ErrAppIDMismatch, ErrSessionKey} {
		if other != kind && errors.Is(err, other) {
			t.Fatalf("%v is also %v", err, other)
		}
	}
}

func TestOpenNeedsNoWatermark(t *testing.T) {
	key := NewSessionKey()
	data, iv, err := Encrypt(key, []byte(`{"phoneNumber":"13800000000"}`))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Open(key, data, iv)
	if err != nil || string(plain) != `{"phoneNumber":"13800000000"}` {
		t.Fatalf("Open: %q, %v", plain, err)
	}
	if _, err := Decrypt(key, data, iv, "wxA"); !errors.Is(err, ErrStaleSessionKey) {
		t.Fatalf("Decrypt still wants a watermark: %v", err)
	}
	for _, plain := range []string{`null`, `[1]`, `"x"`, `{"a":`} {
		data, iv, _ := Encrypt(key, []byte(plain))
		if _, err := Open(key, data, iv); !errors.Is(err, ErrStaleSessionKey) {
			t.Fatalf("Open(%s): %v", plain, err)
		}
	}
	if _, err := Open(NewSessionKey(), data, iv); !errors.Is(err, ErrStaleSessionKey) {
		t.Fatalf("another key: %v", err)
	}
	if _, err := Open(key, "not base64!", iv); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}
}
