package qqemu_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/qq/qqemu"
)

var apps = config.Apps{{Platform: "qq", AppID: "1101", Secret: "s"}, {Platform: "qq", AppID: "1102", Secret: "t"}}

func do(t *testing.T, h http.Handler, method, target, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	var v map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return rec.Code, v
}

func TestDeviceAPI(t *testing.T) {
	e := qqemu.New(apps)
	h := e.Handler()

	status, v := do(t, h, "POST", "/emulator/login", `{"appid":"1101","openid":"ME","unionid":"U"}`)
	require.Equal(t, 200, status, v)
	assert.Equal(t, "ME", v["openid"])
	assert.Equal(t, "U", v["unionid"])
	assert.Len(t, v["code"], 32)
	assert.Len(t, v["session_key"], 24)

	for body, code := range map[string]string{
		`{"openid":"ME"}`:                 "invalid_appid", // two apps: appid required
		`{"appid":"9999"}`:                "unknown_appid",
		`{"appid":"1101","openid":"a b"}`: "invalid_openid",
		`{"appid":"1101","device":"d"}`:   "invalid_json", // not a QQ field
		`[1]`:                             "invalid_json",
		`{"appid":"1101"} {}`:             "invalid_json",
	} {
		status, v := do(t, h, "POST", "/emulator/login", body)
		assert.Equal(t, 400, status, body)
		assert.Equal(t, code, v["error"].(map[string]any)["code"], body)
	}
	status, _ = do(t, h, "GET", "/emulator/login", "")
	assert.Equal(t, 405, status)
	status, _ = do(t, h, "GET", "/emulator/nope", "")
	assert.Equal(t, 404, status)

	status, v = do(t, h, "POST", "/emulator/faults", `{"path":"/sns/jscode2session","errcode":-1,"count":2}`)
	require.Equal(t, 200, status, v)
	status, v = do(t, h, "GET", "/emulator/faults", "")
	require.Equal(t, 200, status)
	assert.Len(t, v["faults"], 1)
	for _, body := range []string{
		`{"path":"/nope","errcode":-1,"count":1}`, `{"path":"/sns/jscode2session","count":1}`,
		`{"path":"/sns/jscode2session","errcode":-1,"http_status":500,"count":1}`, `{"path":"/api/getToken","http_status":700,"count":1}`,
		`{"path":"/api/getToken","errcode":-1,"count":0}`,
	} {
		status, _ := do(t, h, "POST", "/emulator/faults", body)
		assert.Equal(t, 400, status, body)
	}
	status, v = do(t, h, "DELETE", "/emulator/faults", "")
	require.Equal(t, 200, status)
	assert.EqualValues(t, 2, v["cleared"])

	do(t, h, "GET", "/sns/jscode2session?appid=1101", "")
	status, v = do(t, h, "GET", "/emulator/stats", "")
	require.Equal(t, 200, status)
	assert.Equal(t, map[string]any{"/sns/jscode2session": 1.0, "/api/getToken": 0.0}, v["calls"])

	// The device API alone, as mounted under /emulator/qq.
	status, v = do(t, e.DeviceHandler(), "POST", "/login", `{"appid":"1102"}`)
	require.Equal(t, 200, status, v)
}

func TestOneAppNeedsNoAppID(t *testing.T) {
	e := qqemu.New(apps[:1])
	res, err := e.Login(qqemu.LoginRequest{})
	require.NoError(t, err)
	assert.NotEmpty(t, res.Code)
}

func TestWireErrorsHaveQQsShape(t *testing.T) {
	e := qqemu.New(apps)
	h := e.Handler()
	for target, errcode := range map[string]float64{
		"/sns/jscode2session?appid=1101&secret=s&js_code=x&grant_type=authorization_code":   40029,
		"/sns/jscode2session?appid=1101&secret=bad&js_code=x&grant_type=authorization_code": 40125,
		"/sns/jscode2session?appid=9999&secret=s&js_code=x&grant_type=authorization_code":   40013,
		"/sns/jscode2session?appid=1101&secret=s&grant_type=authorization_code":             41008,
		"/sns/jscode2session?appid=1101&secret=s&js_code=x":                                 40002,
		"/sns/jscode2session?secret=s&js_code=x&grant_type=authorization_code":              41002,
		"/api/getToken?grant_type=client_credential&appid=1101&secret=bad":                  40001,
		"/api/getToken?grant_type=x&appid=1101&secret=s":                                    40002,
		"/api/getToken?grant_type=client_credential&appid=9999&secret=s":                    40013,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		assert.Equal(t, 200, rec.Code, target)
		var v map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
		assert.Equal(t, errcode, v["errcode"], target)
		assert.NotEmpty(t, v["errmsg"])
	}
}

// FuzzHandler sends arbitrary requests to a fresh emulator and checks that
// every answer keeps its protocol: wire paths answer HTTP 200 JSON objects,
// the device API answers JSON with the error shape.
//
//	go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime=60s ./modules/qq/qqemu
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/emulator/login", []byte(`{"appid":"1101","openid":"x"}`))
	f.Add("POST", "/emulator/faults", []byte(`{"path":"/api/getToken","errcode":-1,"count":1}`))
	f.Add("GET", "/sns/jscode2session?appid=1101&secret=s&js_code=x&grant_type=authorization_code", []byte(nil))
	f.Add("GET", "/api/getToken?grant_type=client_credential&appid=1101&secret=s", []byte(nil))
	f.Add("DELETE", "/emulator/faults", []byte(nil))
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		e := qqemu.New(apps)
		req, err := http.NewRequest(method, "http://emulator.test"+target, bytes.NewReader(body))
		if err != nil || req.URL.Path == "" {
			return
		}
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 300 && res.StatusCode < 400 {
			return
		}
		var obj map[string]any
		decodeErr := json.Unmarshal(rec.Body.Bytes(), &obj)
		switch path := req.URL.Path; {
		case slices.Contains(qqemu.Paths, path):
			if res.StatusCode != 200 || decodeErr != nil {
				t.Fatalf("%s %s: %d %s", method, target, res.StatusCode, rec.Body.Bytes())
			}
		case strings.HasPrefix(path, "/emulator/"):
			if decodeErr != nil || res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Fatalf("%s %s: %d %s", method, target, res.StatusCode, rec.Body.Bytes())
			}
			if res.StatusCode != 200 {
				if e, ok := obj["error"].(map[string]any); !ok || e["code"] == "" || res.StatusCode >= 500 {
					t.Fatalf("%s %s: %d %s", method, target, res.StatusCode, rec.Body.Bytes())
				}
			}
		}
	})
}
