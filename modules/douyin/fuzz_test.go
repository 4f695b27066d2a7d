package douyin

import (
	"errors"
	"testing"

	"github.com/wxlogin/wxlogin/internal/platformhttp"
	"github.com/wxlogin/wxlogin/modules/provider"
)

// FuzzDecode feeds arbitrary answers to the parser of Douyin's answers: it
// never panics, and every failure is a classified error.
//
//	go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime=60s ./modules/douyin
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"err_no":0,"err_tips":"success","data":{"session_key":"k","openid":"o","anonymous_openid":"a","unionid":"u"}}`,
		`{"err_no":40018,"err_tips":"bad code","log_id":"x"}`, `{"err_no":"0","data":{}}`, `{"err_no":null}`,
		`{"err_no":0,"data":[]}`, `{"err_no":0,"data":null}`, `[]`, ``, `{"err_no":1e99}`,
	} {
		f.Add([]byte(seed), 200)
	}
	f.Add([]byte(`{"err_no":-1}`), 500)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		var out struct {
			OpenID string `json:"openid"`
		}
		err := decode(PathCode2Session, platformhttp.Response{Status: status, Body: body}, &out, []string{"s3cret"})
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
