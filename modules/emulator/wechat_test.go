package emulator_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

func TestCode2SessionSuccessIsWeChatShaped(t *testing.T) {
	e := newEnv(t)
	// A session key with '/' and '+', which WeChat escapes as "\/".
	const key = "o0q0otL8aEzpcZL/FT9+sQ=="
	require.True(t, wxcrypto.ValidSessionKey(key))
	dev := e.login(emulator.LoginRequest{OpenID: "oUser1", SessionKey: key})

	a := e.code2Session(dev.Code)
	requireWire(t, a)
	require.Equal(t, `{"session_key":"o0q0otL8aEzpcZL\/FT9+sQ==","openid":"oUser1"}`, string(a.raw),
		"no errcode on success, no unionid without one, slashes escaped")
	require.Equal(t, key, a.str("session_key"), "a JSON decoder reads the escaped slash back")

	// With a unionid.
	dev = e.login(emulator.LoginRequest{OpenID: "oUser2", UnionID: "uUnion2"})
	a = e.code2Session(dev.Code)
	requireWire(t, a)
	require.Equal(t, map[string]any{"session_key": dev.SessionKey, "openid": "oUser2", "unionid": "uUnion2"}, a.json)
	_, hasErrcode := a.json["errcode"]
	require.False(t, hasErrcode)
}

func TestCode2SessionErrors(t *testing.T) {
	e := newEnv(t)
	code := e.login(emulator.LoginRequest{}).Code
	cases := []struct {
		name  string
		query url.Values
		code  int
		msg   string
	}{
		{"appid missing", url.Values{"secret": {testSecret}, "js_code": {code}}, 41002, "appid missing"},
		{"wrong appid", url.Values{"appid": {"wx0000000000000bad"}, "secret": {testSecret}, "js_code": {code}}, 40013, "invalid appid"},
		{"secret missing", url.Values{"appid": {testAppID}, "js_code": {code}}, 41004, "appsecret missing"},
		{"wrong secret", url.Values{"appid": {testAppID}, "secret": {"nope"}, "js_code": {code}}, 40125, "invalid appsecret"},
		{"wrong grant_type", url.Values{"appid": {testAppID}, "secret": {testSecret}, "js_code": {code}, "grant_type": {"client_credential"}}, 40002, "invalid grant_type"},
		{"js_code missing", url.Values{"appid": {testAppID}, "secret": {testSecret}}, 41008, "missing code"},
		{"unknown code", url.Values{"appid": {testAppID}, "secret": {testSecret}, "js_code": {"0a3GJkll2ZR0Fj4lO5ol2I8u9q2GJklI"}}, 40029, "invalid code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireErrcode(t, e.get(emulator.PathCode2Session, c.query), c.code, c.msg)
		})
	}
	// None of the refused calls used the code up.
	require.NotEmpty(t, e.code2Session(code).str("openid"))
}

func TestCode2SessionCodeIsSingleUse(t *testing.T) {
	e := newEnv(t)
	code := e.login(emulator.LoginRequest{}).Code
	require.NotEmpty(t, e.code2Session(code).str("openid"))
	requireErrcode(t, e.code2Session(code), 40163, "code been used")
	requireErrcode(t, e.code2Session(code), 40163, "code been used")
}

func TestCode2SessionConcurrentExchangesOfOneCode(t *testing.T) {
	e := newEnv(t)
	code := e.login(emulator.LoginRequest{}).Code
	var wg sync.WaitGroup
	results := make([]answer, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.code2Session(code)
		}()
	}
	wg.Wait()
	won := 0
	for _, a := range results {
		if a.str("openid") != "" {
			won++
		} else {
			requireErrcode(t, a, 40163, "code been used")
		}
	}
	require.Equal(t, 1, won, "exactly one exchange of a code succeeds")
}

func TestCode2SessionCodeExpiresAfterFiveMinutes(t *testing.T) {
	e := newEnv(t)
	fresh := e.login(emulator.LoginRequest{}).Code
	old := e.login(emulator.LoginRequest{}).Code
	e.clk.Advance(emulator.CodeTTL - time.Second)
	require.NotEmpty(t, e.code2Session(fresh).str("openid"), "valid just before 5 minutes")
	e.clk.Advance(time.Second)
	requireErrcode(t, e.code2Session(old), 40029, "invalid code")
	e.clk.Advance(time.Hour)
	requireErrcode(t, e.code2Session(old), 40029, "invalid code")
}

func TestCode2SessionMinuteQuotaPerUser(t *testing.T) {
	e := newEnv(t)
	codes := make([]string, emulator.MinuteQuota+1)
	for i := range codes {
		codes[i] = e.login(emulator.LoginRequest{OpenID: "oBusy"}).Code
	}
	for _, c := range codes[:emulator.MinuteQuota] {
		require.Equal(t, "oBusy", e.code2Session(c).str("openid"))
	}
	a := e.code2Session(codes[emulator.MinuteQuota])
	requireErrcode(t, a, 45011, "api minute-quota reach limit, must slower, retry next minute")

	// Another user is not limited.
	other := e.login(emulator.LoginRequest{OpenID: "oCalm"}).Code
	require.Equal(t, "oCalm", e.code2Session(other).str("openid"))

	// Next minute the refused code still works: the refusal did not use it.
	e.clk.Advance(30 * time.Second)
	require.Equal(t, "oBusy", e.code2Session(codes[emulator.MinuteQuota]).str("openid"))
}

func TestTokenErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name  string
		query url.Values
		code  int
		msg   string
	}{
		{"grant_type missing", url.Values{"appid": {testAppID}, "secret": {testSecret}}, 40002, "invalid grant_type"},
		{"appid missing", url.Values{"grant_type": {"client_credential"}, "secret": {testSecret}}, 41002, "appid missing"},
		{"secret missing", url.Values{"grant_type": {"client_credential"}, "appid": {testAppID}}, 41004, "appsecret missing"},
		{"wrong appid", url.Values{"grant_type": {"client_credential"}, "appid": {"wxother"}, "secret": {testSecret}}, 40013, "invalid appid"},
		{"wrong secret", url.Values{"grant_type": {"client_credential"}, "appid": {testAppID}, "secret": {"x"}}, 40125, "invalid appsecret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireErrcode(t, e.get(emulator.PathToken, c.query), c.code, c.msg)
		})
	}
}

func TestTokenEachFetchRetiresOlderTokensAfterFiveMinutes(t *testing.T) {
	e := newEnv(t)
	a := e.get(emulator.PathToken, url.Values{"grant_type": {"client_credential"}, "appid": {testAppID}, "secret": {testSecret}})
	requireWire(t, a)
	require.Len(t, a.json, 2, "no errcode on success: %s", a.raw)
	require.Equal(t, 7200, a.num("expires_in"))
	first := a.str("access_token")
	require.Equal(t, 0, e.tokenErrcode(first))

	e.clk.Advance(time.Minute)
	second := e.fetchToken()
	require.NotEqual(t, first, second)
	e.clk.Advance(emulator.TokenGrace - time.Second)
	require.Equal(t, 0, e.tokenErrcode(first), "the old token works for 5 more minutes")
	e.clk.Advance(time.Second)
	require.Equal(t, 40001, e.tokenErrcode(first), "then it is not the latest")
	require.Equal(t, 0, e.tokenErrcode(second))

	// A third fetch does not give the retired token a new grace period.
	third := e.fetchToken()
	require.Equal(t, 40001, e.tokenErrcode(first))
	require.Equal(t, 0, e.tokenErrcode(second))
	require.Equal(t, 0, e.tokenErrcode(third))

	// Tokens expire after 7200 s.
	e.clk.Advance(emulator.TokenTTL)
	requireErrcode(t, e.checkSession(third, "oAny", wxcrypto.NewSessionKey()), 42001, "access_token expired")
}

func TestAccessTokenErrorsOnAPIs(t *testing.T) {
	e := newEnv(t)
	dev := e.login(emulator.LoginRequest{})
	cases := []struct {
		name, token string
		code        int
		msg         string
	}{
		{"missing", "", 41001, "access_token missing"},
		{"not a token", "not a token!", 40014, "invalid access_token"},
		{"unknown", "86_" + strings.Repeat("A", 130), 40001, "invalid credential, access_token is invalid or not latest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireErrcode(t, e.checkSession(c.token, dev.OpenID, dev.SessionKey), c.code, c.msg)
			q := url.Values{}
			if c.token != "" {
				q.Set("access_token", c.token)
			}
			requireErrcode(t, e.post(emulator.PathPhoneNumber, q, map[string]string{"code": "x"}), c.code, c.msg)
			q.Set("openid", dev.OpenID)
			q.Set("sig_method", "hmac_sha256")
			q.Set("signature", wxcrypto.SessionSignature(dev.SessionKey, nil))
			requireErrcode(t, e.get(emulator.PathResetSessionKey, q), c.code, c.msg)
		})
	}
}

func TestStableToken(t *testing.T) {
	e := newEnv(t)

	t.Run("errors", func(t *testing.T) {
		requireErrcode(t, e.get(emulator.PathStableToken, nil), 43002, "require POST method")
		requireErrcode(t, e.post(emulator.PathStableToken, nil, "{not json"), 47001, "data format error")
		requireErrcode(t, e.post(emulator.PathStableToken, nil, map[string]any{"grant_type": "x", "appid": testAppID, "secret": testSecret}), 40002, "invalid grant_type")
		requireErrcode(t, e.post(emulator.PathStableToken, nil, map[string]any{"grant_type": "client_credential", "appid": testAppID, "secret": "x"}), 40125, "invalid appsecret")
		requireErrcode(t, e.post(emulator.PathStableToken, nil, map[string]any{"grant_type": "client_credential", "appid": "wxother", "secret": testSecret}), 40013, "invalid appid")
	})

	a := e.stableToken(false)
	requireWire(t, a)
	require.Len(t, a.json, 2, "no errcode on success: %s", a.raw)
	require.Equal(t, 7200, a.num("expires_in"))
	tok := a.str("access_token")

	// The same token, with the time it has left, until 5 minutes before expiry.
	e.clk.Advance(time.Hour)
	a = e.stableToken(false)
	require.Equal(t, tok, a.str("access_token"))
	require.Equal(t, 3600, a.num("expires_in"))

	// /cgi-bin/token does not affect stable tokens.
	e.fetchToken()
	e.fetchToken()
	e.clk.Advance(emulator.TokenGrace)
	require.Equal(t, 0, e.tokenErrcode(tok))

	// In its last 5 minutes a new one comes; the old one lives out its time.
	e.clk.Advance(time.Hour - 2*emulator.TokenGrace - time.Second)
	require.Equal(t, tok, e.stableToken(false).str("access_token"), "still more than 5 minutes left")
	e.clk.Advance(time.Second)
	renewed := e.stableToken(false)
	require.NotEqual(t, tok, renewed.str("access_token"))
	require.Equal(t, 7200, renewed.num("expires_in"))
	require.Equal(t, 0, e.tokenErrcode(tok))
	e.clk.Advance(emulator.TokenGrace)
	require.Equal(t, 42001, e.tokenErrcode(tok))

	// force_refresh: a new token at once; the old one works 5 more minutes.
	tok = renewed.str("access_token")
	forced := e.stableToken(true).str("access_token")
	require.NotEqual(t, tok, forced)
	require.Equal(t, forced, e.stableToken(false).str("access_token"))
	e.clk.Advance(emulator.TokenGrace - time.Second)
	require.Equal(t, 0, e.tokenErrcode(tok))
	e.clk.Advance(time.Second)
	require.Equal(t, 40001, e.tokenErrcode(tok))
	require.Equal(t, 0, e.tokenErrcode(forced))
}

func TestGetPhoneNumber(t *testing.T) {
	e := newEnv(t)
	tok := e.fetchToken()
	dev := e.login(emulator.LoginRequest{})
	q := url.Values{"access_token": {tok}}
	phone, err := e.emu.Phone(emulator.PhoneRequest{OpenID: dev.OpenID, Phone: "+8613800000000"})
	require.NoError(t, err)

	a := e.post(emulator.PathPhoneNumber, q, map[string]string{"code": phone.Code})
	requireOK(t, a)
	require.Equal(t, map[string]any{
		"phoneNumber": "13800000000", "purePhoneNumber": "13800000000", "countryCode": "86",
		"watermark": map[string]any{"timestamp": float64(e.clk.Now().Unix()), "appid": testAppID},
	}, a.json["phone_info"])

	// Single use.
	requireErrcode(t, e.post(emulator.PathPhoneNumber, q, map[string]string{"code": phone.Code}), 40029, "invalid code")

	// Five minutes.
	phone, err = e.emu.Phone(emulator.PhoneRequest{OpenID: dev.OpenID, Phone: "+1 4155550100"})
	require.NoError(t, err)
	e.clk.Advance(emulator.CodeTTL)
	requireErrcode(t, e.post(emulator.PathPhoneNumber, q, map[string]string{"code": phone.Code}), 40029, "invalid code")

	requireErrcode(t, e.get(emulator.PathPhoneNumber, q), 43002, "require POST method")
	requireErrcode(t, e.post(emulator.PathPhoneNumber, q, "code=abc"), 47001, "data format error")
	requireErrcode(t, e.post(emulator.PathPhoneNumber, q, map[string]string{}), 41008, "missing code")
	requireErrcode(t, e.post(emulator.PathPhoneNumber, q, map[string]string{"code": "unknown"}), 40029, "invalid code")
}

func TestPhoneLegacyEncryptedData(t *testing.T) {
	e := newEnv(t)
	dev := e.login(emulator.LoginRequest{})
	cases := []struct {
		phone, cc            string
		full, pure, wantCode string
	}{
		{"13800000000", "", "13800000000", "13800000000", "86"},
		{"+8613800000000", "", "13800000000", "13800000000", "86"},
		{"+1 4155550100", "", "+14155550100", "4155550100", "1"},
		{"+14155550100", "1", "+14155550100", "4155550100", "1"},
		{"4155550100", "1", "+14155550100", "4155550100", "1"},
	}
	for _, c := range cases {
		res, err := e.emu.Phone(emulator.PhoneRequest{OpenID: dev.OpenID, Phone: c.phone, CountryCode: c.cc})
		require.NoError(t, err, c.phone)
		info, err := wxcrypto.DecryptPhone(dev.SessionKey, res.EncryptedData, res.IV, testAppID)
		require.NoError(t, err, c.phone)
		require.Equal(t, wxcrypto.PhoneInfo{PhoneNumber: c.full, PurePhoneNumber: c.pure, CountryCode: wxcrypto.CountryCode(c.wantCode),
			Watermark: wxcrypto.Watermark{AppID: testAppID, Timestamp: e.clk.Now().Unix()}}, info, c.phone)
	}
	for _, bad := range []emulator.PhoneRequest{
		{OpenID: dev.OpenID},
		{OpenID: dev.OpenID, Phone: "138-0000-0000"},
		{OpenID: dev.OpenID, Phone: "+4155550100"},
		{OpenID: dev.OpenID, Phone: "+1 4155550100", CountryCode: "86"},
		{OpenID: dev.OpenID, Phone: "123"},
		{OpenID: dev.OpenID, Phone: "13800000000", CountryCode: "+86"},
		{OpenID: "oNobody", Phone: "13800000000"},
		{Phone: "13800000000"},
	} {
		_, err := e.emu.Phone(bad)
		var ie *emulator.InputError
		require.ErrorAs(t, err, &ie, "%+v", bad)
		require.Equal(t, http.StatusBadRequest, ie.Status)
	}
}

func TestCheckSession(t *testing.T) {
	e := newEnv(t)
	tok := e.fetchToken()
	dev := e.login(emulator.LoginRequest{})

	requireOK(t, e.checkSession(tok, dev.OpenID, dev.SessionKey))
	requireErrcode(t, e.checkSession(tok, dev.OpenID, wxcrypto.NewSessionKey()), 87009, "invalid signature")
	requireErrcode(t, e.checkSession(tok, "oNobody", dev.SessionKey), 87009, "invalid signature")
	requireErrcode(t, e.checkSession(tok, "", dev.SessionKey), 41009, "missing openid")

	upper := url.Values{"access_token": {tok}, "openid": {dev.OpenID}, "sig_method": {"hmac_sha256"},
		"signature": {strings.ToUpper(wxcrypto.SessionSignature(dev.SessionKey, nil))}}
	requireErrcode(t, e.get(emulator.PathCheckSession, upper), 87009, "invalid signature")
	upper.Set("sig_method", "sha256")
	requireErrcode(t, e.get(emulator.PathCheckSession, upper), 87008, "invalid sig_method")

	// wx.login again: only the newest session key is current.
	again := e.login(emulator.LoginRequest{OpenID: dev.OpenID})
	requireErrcode(t, e.checkSession(tok, dev.OpenID, dev.SessionKey), 87009, "invalid signature")
	requireOK(t, e.checkSession(tok, dev.OpenID, again.SessionKey))
}

func TestResetUserSessionKey(t *testing.T) {
	e := newEnv(t)
	tok := e.fetchToken()
	dev := e.login(emulator.LoginRequest{})
	reset := func(openID, key, method string) answer {
		return e.get(emulator.PathResetSessionKey, url.Values{"access_token": {tok}, "openid": {openID},
			"sig_method": {method}, "signature": {wxcrypto.SessionSignature(key, nil)}})
	}

	requireErrcode(t, reset(dev.OpenID, dev.SessionKey, "md5"), 87008, "invalid sig_method")
	requireErrcode(t, reset(dev.OpenID, wxcrypto.NewSessionKey(), "hmac_sha256"), 87009, "invalid signature")
	requireErrcode(t, reset("oNobody", dev.SessionKey, "hmac_sha256"), 87007, "session_key is not existed or expired")

	a := reset(dev.OpenID, dev.SessionKey, "hmac_sha256")
	requireOK(t, a)
	require.Equal(t, dev.OpenID, a.str("openid"))
	newKey := a.str("session_key")
	require.True(t, wxcrypto.ValidSessionKey(newKey))
	require.NotEqual(t, dev.SessionKey, newKey)
	current, _ := e.emu.SessionKey("", dev.OpenID)
	require.Equal(t, newKey, current, "the new key becomes the current one")
	requireErrcode(t, e.checkSession(tok, dev.OpenID, dev.SessionKey), 87009, "invalid signature")
	requireOK(t, e.checkSession(tok, dev.OpenID, newKey))
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	code := e.login(emulator.LoginRequest{}).Code

	a := e.device(http.MethodPost, "/emulator/faults", `{"path":"/sns/jscode2session","errcode":-1,"count":2}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.raw)
	requireErrcode(t, e.code2Session(code), -1, "system error")
	requireErrcode(t, e.code2Session(code), -1, "system error")
	require.NotEmpty(t, e.code2Session(code).str("openid"), "the fault is spent; the code was not used by it")

	// An errcode WeChat's table does not have.
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathToken, ErrCode: 40164, Count: 1}))
	requireErrcode(t, e.get(emulator.PathToken, nil), 40164, "injected fault")

	// An HTTP status with an empty text/html body.
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathToken, HTTPStatus: 502, Count: 1}))
	a = e.get(emulator.PathToken, nil)
	require.Equal(t, 502, a.status)
	require.Empty(t, a.raw)
	require.True(t, strings.HasPrefix(a.ctype, "text/html"), a.ctype)

	// A raw body at HTTP 200: an answer WeChat would never give.
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathToken, Body: `{"access_token":`, Count: 1}))
	a = e.get(emulator.PathToken, nil)
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, `{"access_token":`, string(a.raw))

	// Faults of one path apply in order; other paths are untouched.
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathStableToken, ErrCode: 45009, Count: 1}))
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathStableToken, HTTPStatus: 200, Count: 1}))
	requireErrcode(t, e.stableToken(false), 45009, "reach max api daily quota limit")
	a = e.stableToken(false)
	require.Equal(t, http.StatusOK, a.status)
	require.Empty(t, a.raw, "an empty 200 body")
	requireWire(t, e.stableToken(false))

	// DELETE clears what is pending.
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathCheckSession, ErrCode: -1, Count: 5}))
	a = e.device(http.MethodGet, "/emulator/faults", "")
	require.Len(t, a.json["faults"], 1)
	a = e.device(http.MethodDelete, "/emulator/faults", "")
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, 5, a.num("cleared"))
	require.Empty(t, e.emu.Faults())
}

func TestFaultDelayRespectsCancellation(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathToken, DelayMS: 600_000, Count: 1}))
	req, err := http.NewRequestWithContext(ctxTimeout(t, 50*time.Millisecond), http.MethodGet, e.url+emulator.PathToken, nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.Error(t, err, "the client gave up during the delay")

	// A delay alone only slows the call down.
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathToken, DelayMS: 1, Count: 1}))
	e.fetchToken()
	// The abandoned call does not hold shutdown up.
	require.NoError(t, e.emu.Shutdown(ctxTimeout(t, 10*time.Second)))
}

func TestFaultValidation(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ name, body, code string }{
		{"bad json", `{"path":`, "invalid_json"},
		{"not an object", `[1]`, "invalid_json"},
		{"form encoded", `path=/sns/jscode2session&count=1`, "invalid_json"},
		{"unknown field", `{"path":"/cgi-bin/token","errcode":-1,"count":1,"cnt":2}`, "invalid_json"},
		{"wrong type", `{"path":"/cgi-bin/token","errcode":"-1","count":1}`, "invalid_json"},
		{"two objects", `{"path":"/cgi-bin/token","errcode":-1,"count":1}{}`, "invalid_json"},
		{"empty", ``, "invalid_fault"},
		{"unknown path", `{"path":"/cgi-bin/nope","errcode":-1,"count":1}`, "invalid_fault"},
		{"no count", `{"path":"/cgi-bin/token","errcode":-1}`, "invalid_fault"},
		{"nothing to do", `{"path":"/cgi-bin/token","count":1}`, "invalid_fault"},
		{"both", `{"path":"/cgi-bin/token","errcode":-1,"http_status":500,"count":1}`, "invalid_fault"},
		{"status out of range", `{"path":"/cgi-bin/token","http_status":99,"count":1}`, "invalid_fault"},
		{"negative delay", `{"path":"/cgi-bin/token","delay_ms":-5,"count":1}`, "invalid_fault"},
		{"errcode and body", `{"path":"/cgi-bin/token","errcode":-1,"body":"x","count":1}`, "invalid_fault"},
		{"alipay's sub_code", `{"path":"/cgi-bin/token","errcode":-1,"sub_code":"isv.x","count":1}`, "invalid_fault"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.device(http.MethodPost, "/emulator/faults", c.body)
			requireDeviceError(t, a, http.StatusBadRequest, c.code)
		})
	}
	require.Empty(t, e.emu.Faults())
}

func TestStatsCountCallsPerPath(t *testing.T) {
	e := newEnv(t)
	a := e.device(http.MethodGet, "/emulator/stats", "")
	require.Equal(t, http.StatusOK, a.status)
	zero := map[string]any{}
	for _, p := range emulator.WeChatPaths {
		zero[p] = float64(0)
	}
	require.Equal(t, map[string]any{"calls": zero}, a.json, "every path present, 0 when never called")

	code := e.login(emulator.LoginRequest{}).Code
	e.code2Session(code)
	e.code2Session(code) // refused calls count too
	require.NoError(t, e.emu.AddFault(emulator.Fault{Path: emulator.PathToken, HTTPStatus: 500, Count: 1}))
	e.get(emulator.PathToken, nil) // and faulted ones
	tok := e.fetchToken()
	e.stableToken(false)
	e.checkSession(tok, "o", "k")
	e.get(emulator.PathResetSessionKey, nil)
	e.device(http.MethodPost, "/emulator/login", `{}`) // the device API is not counted

	a = e.device(http.MethodGet, "/emulator/stats", "")
	require.Equal(t, map[string]any{"calls": map[string]any{
		emulator.PathCode2Session: float64(2), emulator.PathToken: float64(2), emulator.PathStableToken: float64(1),
		emulator.PathPhoneNumber: float64(0), emulator.PathCheckSession: float64(1), emulator.PathResetSessionKey: float64(1),
		emulator.PathOAuthToken: float64(0), emulator.PathOAuthUserInfo: float64(0),
	}}, a.json)
	require.Equal(t, 2, e.emu.Calls()[emulator.PathCode2Session])
}
