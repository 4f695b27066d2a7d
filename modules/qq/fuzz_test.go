package qq

import (
	"errors"
	"testing"

	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// FuzzDecode feeds arbitrary answers to the parser of QQ's answers: it never
// panics, and every failure is a classified error.
//
//	go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime=60s ./modules/qq
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"openid":"o","session_key":"k","unionid":"u"}`, `{"errcode":40029,"errmsg":"invalid code"}`,
		`{"errcode":"-1"}`, `{"errcode":null}`, `{"access_token":"t","expires_in":"7200"}`, `[]`, ``, "\xef\xbb\xbf{}", `{"errcode":1e400}`,
	} {
		f.Add([]byte(seed), 200)
	}
	f.Add([]byte(`{}`), 502)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		var out struct {
			OpenID     string `json:"openid"`
			SessionKey string `json:"session_key"`
		}
		err := decode(PathCode2Session, platformhttp.Response{Status: status, ContentType: "text/plain", Body: body}, &out, []string{"s3cret"})
		if err == nil {
			if status < 200 || status > 299 {
				t.Fatalf("status %d accepted", status)
			}
			return
		}
		var c provider.Classifier
		if !errors.As(err, &c) {
			t.Fatalf("unclassified error %T: %v", err, err)
		}
	})
}
