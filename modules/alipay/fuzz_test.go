package alipay

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/internal/rsakey"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// FuzzDecode feeds arbitrary gateway answers to the parser: it never
// panics, never accepts an answer without a valid signature, and every
// failure is a classified error.
//
//	go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime=60s ./modules/alipay
func FuzzDecode(f *testing.F) {
	key, err := rsakey.Generate()
	if err != nil {
		f.Fatal(err)
	}
	node := `{"open_id":"0abc","access_token":"t"}`
	sig, _ := SignBytes(key, []byte(node))
	f.Add([]byte(`{"alipay_system_oauth_token_response":`+node+`,"sign":"`+sig+`"}`), 200)
	for _, seed := range []string{
		`{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid","sub_msg":"x"}}`,
		`{"alipay_system_oauth_token_response":{"open_id":"0"}}`, `{"sign":null}`, `{"a":1,"a":2}`, `[]`, ``, `{"error_response":[]}`,
	} {
		f.Add([]byte(seed), 200)
	}
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		var out struct {
			OpenID string `json:"open_id"`
		}
		err := decode(&key.PublicKey, MethodOAuthToken, platformhttp.Response{Status: status, Body: body}, &out)
		if err == nil {
			g, perr := parseGatewayBody(trim(body))
			if perr != nil {
				t.Fatalf("accepted an unparsable body")
			}
			s, _, _ := g.sign()
			if Verify(&key.PublicKey, g.members[ResponseNode(MethodOAuthToken)], s) != nil {
				t.Fatalf("accepted an answer whose signature does not verify: %q", body)
			}
			return
		}
		var c provider.Classifier
		if !errors.As(err, &c) {
			t.Fatalf("unclassified error %T: %v", err, err)
		}
	})
}

// FuzzPhoneNumber feeds arbitrary my.getPhoneNumber strings to the phone
// parser: it never panics and every failure is classified.
//
//	go test -run='^$' -fuzz='^FuzzPhoneNumber$' -fuzztime=60s ./modules/alipay
func FuzzPhoneNumber(f *testing.F) {
	key, err := rsakey.Generate()
	if err != nil {
		f.Fatal(err)
	}
	priv, _ := rsakey.PrivateKeyPEM(key)
	pub, _ := rsakey.PublicKeyPEM(&key.PublicKey)
	c, err := NewClient(config.Apps{{Platform: Platform, AppID: "2021", PrivateKey: priv, AlipayPublicKey: pub, AESKey: "AAAAAAAAAAAAAAAAAAAAAA=="}})
	if err != nil {
		f.Fatal(err)
	}
	sig, _ := SignBytes(key, []byte(`"AAAAAAAAAAAAAAAAAAAAAA=="`))
	f.Add(`{"response":"AAAAAAAAAAAAAAAAAAAAAA==","sign":"` + sig + `"}`)
	f.Add(`{"response":"{\"code\":\"10000\"}","sign":"x","sign_type":"RSA2"}`)
	f.Add(`{"response":""}`)
	f.Fuzz(func(t *testing.T, response string) {
		_, err := c.PhoneNumber(context.Background(), "2021", response)
		if err == nil {
			return
		}
		var cl provider.Classifier
		if !errors.As(err, &cl) {
			t.Fatalf("unclassified error %T: %v", err, err)
		}
	})
}

func trim(b []byte) []byte {
	return bytes.TrimPrefix(bytes.TrimSpace(b), []byte("\xef\xbb\xbf"))
}
