package alipayemu_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/rsakey"
	"github.com/wxlogin/wxlogin/modules/alipay"
	"github.com/wxlogin/wxlogin/modules/alipay/alipayemu"
)

var (
	once           sync.Once
	appKey, emuKey *rsa.PrivateKey
	apps           config.Apps
)

func setup(t testing.TB) *alipayemu.Emulator {
	t.Helper()
	once.Do(func() {
		var err error
		if appKey, err = rsakey.Generate(); err != nil {
			panic(err)
		}
		if emuKey, err = rsakey.Generate(); err != nil {
			panic(err)
		}
		pem, _ := rsakey.PrivateKeyPEM(appKey)
		apps = config.Apps{{Platform: "alipay", AppID: "2021", PrivateKey: pem, AESKey: "AAAAAAAAAAAAAAAAAAAAAA=="}}
	})
	e, err := alipayemu.New(apps, emuKey)
	require.NoError(t, err)
	return e
}

func form(t testing.TB, edit func(url.Values)) url.Values {
	f := url.Values{
		"app_id": {"2021"}, "method": {"alipay.system.oauth.token"}, "format": {"JSON"}, "charset": {"utf-8"},
		"sign_type": {"RSA2"}, "timestamp": {"2024-05-01 18:00:00"}, "version": {"1.0"},
		"grant_type": {"authorization_code"}, "code": {"x"},
	}
	if edit != nil {
		edit(f)
	}
	if f.Get("sign") == "" && f.Get("sign_type") != "" {
		sig, err := alipay.Sign(appKey, f)
		require.NoError(t, err)
		f.Set("sign", sig)
	}
	return f
}

func post(t *testing.T, e *alipayemu.Emulator, f url.Values) (map[string]json.RawMessage, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", alipayemu.PathGateway, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	e.Handler().ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, alipayemu.ContentType, rec.Header().Get("Content-Type"))
	var body map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	var node map[string]string
	if raw, ok := body["error_response"]; ok {
		require.NoError(t, json.Unmarshal(raw, &node))
	}
	return body, node
}

func TestGatewayChecks(t *testing.T) {
	e := setup(t)
	cases := map[string]struct {
		edit     func(url.Values)
		sub      string
		unsigned bool
	}{
		"no app_id":         {func(f url.Values) { f.Del("app_id") }, "isv.missing-app-id", true},
		"unknown app_id":    {func(f url.Values) { f.Set("app_id", "2099") }, "isv.invalid-app-id", true},
		"no sign_type":      {func(f url.Values) { f.Del("sign_type"); f.Set("sign", "x") }, "isv.missing-signature-type", false},
		"RSA sign_type":     {func(f url.Values) { f.Set("sign_type", "RSA") }, "isv.invalid-signature-type", false},
		"bad signature":     {func(f url.Values) { f.Set("sign", "bm9wZQ==") }, "isv.invalid-signature", false},
		"signature not b64": {func(f url.Values) { f.Set("sign", "!!") }, "isv.invalid-signature", false},
		"unknown method":    {func(f url.Values) { f.Set("method", "alipay.trade.pay") }, "isv.invalid-method", false},
		"no method":         {func(f url.Values) { f.Del("method") }, "isv.missing-method", false},
		"GBK":               {func(f url.Values) { f.Set("charset", "GBK") }, "isv.invalid-charset", false},
		"XML":               {func(f url.Values) { f.Set("format", "XML") }, "isv.invalid-format", false},
		"no timestamp":      {func(f url.Values) { f.Del("timestamp") }, "isv.missing-timestamp", false},
		"bad timestamp":     {func(f url.Values) { f.Set("timestamp", "2024-05-01T18:00:00Z") }, "isv.invalid-timestamp", false},
		"no version":        {func(f url.Values) { f.Del("version") }, "isv.missing-version", false},
		"refresh_token":     {func(f url.Values) { f.Set("grant_type", "refresh_token") }, "isv.grant-type-invalid", false},
		"unknown code":      {nil, "isv.code-invalid", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := form(t, tc.edit)
			body, node := post(t, e, f)
			assert.Equal(t, tc.sub, node["sub_code"])
			assert.NotEmpty(t, node["code"])
			assert.NotEmpty(t, node["msg"])
			_, signed := body["sign"]
			assert.Equal(t, !tc.unsigned, signed)
		})
	}
	t.Run("a changed parameter breaks the signature", func(t *testing.T) {
		f := form(t, nil)
		f.Set("code", "other")
		_, node := post(t, e, f)
		assert.Equal(t, "isv.invalid-signature", node["sub_code"])
	})
	t.Run("success is signed over the node", func(t *testing.T) {
		dev, err := e.Login(alipayemu.LoginRequest{})
		require.NoError(t, err)
		body, _ := post(t, e, form(t, func(f url.Values) { f.Set("code", dev.Code) }))
		var sig string
		require.NoError(t, json.Unmarshal(body["sign"], &sig))
		require.NoError(t, alipay.Verify(e.PublicKey(), body["alipay_system_oauth_token_response"], sig))
		var node map[string]any
		require.NoError(t, json.Unmarshal(body["alipay_system_oauth_token_response"], &node))
		assert.Equal(t, dev.OpenID, node["open_id"])
		assert.NotEmpty(t, node["access_token"])
		assert.Nil(t, node["user_id"])
	})
}

func TestDeviceAPI(t *testing.T) {
	e := setup(t)
	h := e.Handler()
	do := func(method, target, body string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
		var v map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
		return rec.Code, v
	}
	status, v := do("POST", "/emulator/login", `{"unionid":"U"}`)
	require.Equal(t, 200, status, v)
	assert.Equal(t, "open_id", v["id_type"])
	assert.Equal(t, "U", v["unionid"])
	e.SetUserIDMode("2021", true)
	_, v = do("POST", "/emulator/login", `{}`)
	assert.Equal(t, "user_id", v["id_type"])
	assert.True(t, strings.HasPrefix(v["openid"].(string), "2088"))

	status, v = do("POST", "/emulator/phone", `{"phone":"13800000000"}`)
	require.Equal(t, 200, status, v)
	assert.Contains(t, v["response"], `"sign_type":"RSA2"`)
	status, v = do("POST", "/emulator/phone", `{"phone":"abc"}`)
	assert.Equal(t, 400, status)
	assert.Equal(t, "invalid_phone", v["error"].(map[string]any)["code"])
	status, _ = do("POST", "/emulator/login", `{"openid":"a:b"}`)
	assert.Equal(t, 400, status)
	status, _ = do("POST", "/emulator/faults", `{"path":"/gateway.do","errcode":20000,"sub_code":"isp.unknow-error","count":1}`)
	assert.Equal(t, 200, status)
	_, node := post(t, e, form(t, nil))
	assert.Equal(t, "20000", node["code"])
	assert.Equal(t, "isp.unknow-error", node["sub_code"])
	_, v = do("GET", "/emulator/stats", "")
	assert.Equal(t, map[string]any{"/gateway.do": 1.0}, v["calls"])
}

func TestNewRefusesAnAppWithoutKey(t *testing.T) {
	_, err := alipayemu.New(config.Apps{{Platform: "alipay", AppID: "2021"}}, nil)
	assert.ErrorContains(t, err, "private_key")
}

// FuzzHandler sends arbitrary requests to a fresh emulator: the gateway
// always answers HTTP 200 JSON with a response node, the device API JSON
// with the error shape.
//
//	go test -run='^$' -fuzz='^FuzzHandler$' -fuzztime=60s ./modules/alipay/alipayemu
func FuzzHandler(f *testing.F) {
	setup(f)
	f.Add("POST", "/gateway.do", []byte(form(f, nil).Encode()))
	f.Add("GET", "/gateway.do?"+form(f, nil).Encode(), []byte(nil))
	f.Add("POST", "/emulator/login", []byte(`{"openid":"x"}`))
	f.Add("POST", "/emulator/phone", []byte(`{"phone":"13800000000"}`))
	f.Add("POST", "/emulator/faults", []byte(`{"path":"/gateway.do","errcode":40005,"count":1}`))
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		// A fresh emulator: a queued delay fault must not outlive its input.
		e, err := alipayemu.New(apps, emuKey)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(method, "http://emulator.test"+target, bytes.NewReader(body))
		if err != nil || req.URL.Path == "" {
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.Handler().ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 300 && res.StatusCode < 400 {
			return
		}
		var obj map[string]json.RawMessage
		decodeErr := json.Unmarshal(rec.Body.Bytes(), &obj)
		switch path := req.URL.Path; {
		case slices.Contains(alipayemu.Paths, path):
			_, isErr := obj["error_response"]
			_, isOK := obj["alipay_system_oauth_token_response"]
			if res.StatusCode != 200 || decodeErr != nil || (!isErr && !isOK) {
				t.Fatalf("%s %s: %d %s", method, target, res.StatusCode, rec.Body.Bytes())
			}
		case strings.HasPrefix(path, "/emulator/"):
			if decodeErr != nil || res.StatusCode >= 500 {
				t.Fatalf("%s %s: %d %s", method, target, res.StatusCode, rec.Body.Bytes())
			}
		}
	})
}
