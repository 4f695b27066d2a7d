package douyinemu_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/modules/douyin/douyinemu"
)

var apps = config.Apps{{Platform: "douyin", AppID: "tt1", Secret: "s"}}

func do(t *testing.T, h http.Handler, method, target, body string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	var v map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return rec.Code, v
}

func TestDeviceAPI(t *testing.T) {
	e := douyinemu.New(apps)
	h := e.Handler()
	status, v := do(t, h, "POST", "/emulator/login", `{"device":"d1"}`)
	require.Equal(t, 200, status, v)
	for _, k := range []string{"code", "anonymous_code", "openid", "anonymous_openid", "session_key"} {
		assert.NotEmpty(t, v[k], k)
	}
	anon := v["anonymous_openid"]
	status, v = do(t, h, "POST", "/emulator/login", `{"device":"d1","anonymous":true}`)
	require.Equal(t, 200, status, v)
	assert.Equal(t, anon, v["anonymous_openid"], "the device fixes the anonymous_openid")
	assert.Nil(t, v["code"])
	assert.Nil(t, v["openid"])
	assert.Nil(t, v["session_key"])

	for body, code := range map[string]string{
		`{"anonymous":true,"openid":"x"}`: "invalid_request",
		`{"device":"a b"}`:                "invalid_device",
		`{"appid":"tt9"}`:                 "unknown_appid",
		`{"anonymous":"yes"}`:             "invalid_json",
	} {
		status, v := do(t, h, "POST", "/emulator/login", body)
		assert.Equal(t, 400, status, body)
		assert.Equal(t, code, v["error"].(map[string]any)["code"], body)
	}
	status, v = do(t, h, "POST", "/emulator/phone", `{"openid":"nobody","phone":"13800000000"}`)
	assert.Equal(t, 400, status)
	assert.Equal(t, "unknown_openid", v["error"].(map[string]any)["code"])

	status, _ = do(t, h, "POST", "/emulator/faults", `{"path":"/api/apps/v2/token","errcode":-1,"count":1}`)
	assert.Equal(t, 200, status)
	status, v = do(t, h, "GET", "/emulator/stats", "")
	assert.Equal(t, 200, status)
	assert.Contains(t, v["calls"], "/api/apps/v2/jscode2session")

	status, _ = do(t, e.DeviceHandler(), "POST", "/login", `{}`)
	assert.Equal(t, 200, status)
}

func TestWireErrorsHaveDouyinsShape(t *testing.T) {
	e := douyinemu.New(apps)
	for body, errNo := range map[string]float64{
		`{"appid":"tt1","secret":"s","code":"x"}`:           40018,
		`{"appid":"tt1","secret":"s","anonymous_code":"x"}`: 40019,
		`{"appid":"tt1","secret":"s"}`:                      40014,
		`{"appid":"tt1","secret":"bad","code":"x"}`:         40017,
		`{"appid":"tt9","secret":"s","code":"x"}`:           40015,
		`not json`: 40014,
	} {
		status, v := do(t, e.Handler(), "POST", douyinemu.PathCode2Session, body)
		assert.Equal(t, 200, status)
		assert.Equal(t, errNo, v["err_no"], body)
		assert.NotEmpty(t, v["err_tips"])
		assert.NotEmpty(t, v["log_id"])
	}
	_, v := do(t, e.Handler(), "GET", douyinemu.PathCode2Session, "")
	assert.Equal(t, 40014.0, v["err_no"], "POST only [U]")
	_, v = do(t, e.Handler(), "POST", douyinemu.PathToken, `{"appid":"tt1","secret":"s","grant_type":"x"}`)
	assert.Equal(t, 40020.0, v["err_no"])
	_, v = do(t, e.Handler(), "POST", douyinemu.PathToken, `{"appid":"tt1","secret":"s","grant_type":"client_credential"}`)
	assert.Equal(t, 0.0, v["err_no"])
	assert.Equal(t, 7200.0, v["data"].(map[string]any)["expires_in"])
}

func TestCodesExpire(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	e := douyinemu.New(apps, douyinemu.WithClock(func() time.Time { return now }))
	dev, err := e.Login(douyinemu.LoginRequest{})
	require.NoError(t, err)
	now = now.Add(douyinemu.CodeTTL - time.Second)
	_, v := do(t, e.Handler(), "POST", douyinemu.PathCode2Session, `{"appid":"tt1","secret":"s","code":"`+dev.Code+`"}`)
	assert.Equal(t, 0.0, v["err_no"])
	now = now.Add(time.Second)
	_, v = do(t, e.Handler(), "POST", douyinemu.PathCode2Session, `{"appid":"tt1","secret":"s","anonymous_code":"`+dev.AnonymousCode+`"}`)
	assert.Equal(t, 40019.0, v["err_no"])
}

// FuzzHandler sends arbitrary requests to a fresh emulator: wire paths
// always answer HTTP 200 JSON with err_no, the device API JSON with the
// error shape.
//
//	go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime=60s ./modules/douyin/douyinemu
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/emulator/login", []byte(`{"device":"d","anonymous":true}`))
	f.Add("POST", "/emulator/phone", []byte(`{"openid":"x","phone":"13800000000"}`))
	f.Add("POST", "/api/apps/v2/jscode2session", []byte(`{"appid":"tt1","secret":"s","code":"x"}`))
	f.Add("POST", "/api/apps/v2/token", []byte(`{"appid":"tt1","secret":"s","grant_type":"client_credential"}`))
	f.Add("POST", "/emulator/faults", []byte(`{"path":"/api/apps/v2/token","body":"x","count":1}`))
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		e := douyinemu.New(apps)
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
		case slices.Contains(douyinemu.Paths, path):
			if _, has := obj["err_no"]; res.StatusCode != 200 || decodeErr != nil || !has {
				t.Fatalf("%s %s: %d %s", method, target, res.StatusCode, rec.Body.Bytes())
			}
		case strings.HasPrefix(path, "/emulator/"):
			if decodeErr != nil || res.StatusCode >= 500 {
				t.Fatalf("%s %s: %d %s", method, target, res.StatusCode, rec.Body.Bytes())
			}
			if res.StatusCode != 200 {
				if e, ok := obj["error"].(map[string]any); !ok || e["code"] == "" {
					t.Fatalf("%s %s: %d %s", method, target, res.StatusCode, rec.Body.Bytes())
				}
			}
		}
	})
}
