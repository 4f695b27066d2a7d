package emulator_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/wxlogin/wxlogin/modules/emulator"
)

// FuzzHandler sends arbitrary requests to a fresh emulator that knows the
// user "oFuzz", and checks that every answer keeps its protocol: WeChat
// paths answer HTTP 200 text/plain JSON objects, the device API answers
// JSON with the error shape. The seed corpus is in testdata/fuzz/FuzzHandler.
//
//	go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime=60s ./modules/emulator
func FuzzHandler(f *testing.F) {
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		emu := emulator.New(testApps)
		if _, err := emu.Login(emulator.LoginRequest{OpenID: "oFuzz"}); err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(method, "http://emulator.test"+target, bytes.NewReader(body))
		if err != nil || req.URL.Path == "" {
			return
		}
		rec := httptest.NewRecorder()
		emu.Handler().ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 300 && res.StatusCode < 400 { // ServeMux cleaning the path
			return
		}
		var obj map[string]any
		decodeErr := json.Unmarshal(rec.Body.Bytes(), &obj)
		switch path := req.URL.Path; {
		case slices.Contains(emulator.WeChatPaths, path):
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/plain" || decodeErr != nil {
				t.Fatalf("%s %s: %d %q %s", method, target, res.StatusCode, res.Header.Get("Content-Type"), rec.Body.Bytes())
			}
			if code, has := obj["errcode"].(float64); has && code != 0 && !strings.Contains(obj["errmsg"].(string), ", rid: ") {
				t.Fatalf("errmsg without rid: %s", rec.Body.Bytes())
			}
		case strings.HasPrefix(path, "/emulator/"):
			if decodeErr != nil || res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Fatalf("%s %s: %d %q %s", method, target, res.StatusCode, res.Header.Get("Content-Type"), rec.Body.Bytes())
			}
			switch res.StatusCode {
			case http.StatusOK:
			case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
				if e, ok := obj["error"].(map[string]any); !ok || e["code"] == "" || e["message"] == "" {
					t.Fatalf("error without the error shape: %s", rec.Body.Bytes())
				}
			default:
				t.Fatalf("%s %s: status %d: %s", method, target, res.StatusCode, rec.Body.Bytes())
			}
		}
	})
}
