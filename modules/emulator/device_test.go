package emulator_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

func requireDeviceError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	require.Equal(t, status, a.status, "body: %s", a.raw)
	require.Equal(t, "application/json; charset=utf-8", a.ctype)
	errObj, ok := a.json["error"].(map[string]any)
	require.True(t, ok, "body: %s", a.raw)
	require.Equal(t, code, errObj["code"], "body: %s", a.raw)
	require.NotEmpty(t, errObj["message"])
	require.Len(t, a.json, 1)
}

func TestDeviceLogin(t *testing.T) {
	e := newEnv(t)

	// No openid: a new user with a WeChat-looking openid and no unionid.
	a := e.device(http.MethodPost, "/emulator/login", "")
	require.Equal(t, http.StatusOK, a.status, "%s", a.raw)
	require.Equal(t, "application/json; charset=utf-8", a.ctype)
	require.Len(t, a.json, 4)
	openID := a.str("openid")
	require.Regexp(t, `^o[A-Za-z0-9_-]{27}$`, openID)
	require.Regexp(t, `^[A-Za-z0-9]{32}$`, a.str("code"))
	require.Equal(t, "", a.str("unionid"))
	require.True(t, wxcrypto.ValidSessionKey(a.str("session_key")))

	// The same openid is the same user, with a new session key each time.
	b := e.device(http.MethodPost, "/emulator/login", `{"openid":"`+openID+`","unionid":"uX"}`)
	require.Equal(t, openID, b.str("openid"))
	require.Equal(t, "uX", b.str("unionid"))
	require.NotEqual(t, a.str("session_key"), b.str("session_key"))
	c := e.device(http.MethodPost, "/emulator/login", `{"openid":"`+openID+`"}`)
	require.Equal(t, "", c.str("unionid"), "whether WeChat returns the unionid is the device call's choice")
	require.Equal(t, "uX", e.code2Session(b.str("code")).str("unionid"), "given: returned")
	_, has := e.code2Session(c.str("code")).json["unionid"]
	require.False(t, has, "absent: not returned (an app bound to the Open Platform later)")

	// A given session key becomes the current one, and code2Session returns it.
	const key = "tiihtNczf5v6AKRyjwEUhQ=="
	d := e.device(http.MethodPost, "/emulator/login", `{"openid":"demo-user","session_key":"`+key+`"}`)
	require.Equal(t, key, d.str("session_key"))
	current, ok := e.emu.SessionKey("", "demo-user")
	require.True(t, ok)
	require.Equal(t, key, current)
	require.Equal(t, key, e.code2Session(d.str("code")).str("session_key"))

	// Older codes of a user still exchange, for the user's current key.
	require.Equal(t, c.str("session_key"), e.code2Session(a.str("code")).str("session_key"))
}

func TestDeviceUserInfo(t *testing.T) {
	e := newEnv(t)
	dev := e.login(emulator.LoginRequest{UnionID: "uUnion"})
	a := e.device(http.MethodPost, "/emulator/userinfo",
		`{"openid":"`+dev.OpenID+`","nickname":"Band","avatar_url":"http://wx.qlogo.cn/mmopen/x/0","gender":1,"city":"Guangzhou","province":"Guangdong","country":"CN","language":"zh_CN"}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.raw)
	require.Len(t, a.json, 4)
	rawData, sig := a.str("raw_data"), a.str("signature")

	// rawData is wx.getUserInfo's: no openId, unionId or watermark; slashes as they are.
	require.Equal(t, `{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/x/0"}`, rawData)
	require.True(t, wxcrypto.VerifyRawData(rawData, sig, dev.SessionKey))

	// The server gets the session key from code2Session and decrypts.
	key := e.code2Session(dev.Code).str("session_key")
	info, err := wxcrypto.DecryptUserInfo(key, a.str("encrypted_data"), a.str("iv"), testAppID)
	require.NoError(t, err)
	require.Equal(t, wxcrypto.UserInfo{OpenID: dev.OpenID, NickName: "Band", Gender: 1, Language: "zh_CN",
		City: "Guangzhou", Province: "Guangdong", Country: "CN", AvatarURL: "http://wx.qlogo.cn/mmopen/x/0",
		UnionID: "uUnion", Watermark: wxcrypto.Watermark{AppID: testAppID, Timestamp: e.clk.Now().Unix()}}, info)

	// Defaults: the anonymous profile; no unionId for a user without one.
	plain := e.login(emulator.LoginRequest{})
	res, err := e.emu.UserInfo(emulator.UserInfoRequest{OpenID: plain.OpenID})
	require.NoError(t, err)
	raw, err := wxcrypto.Decrypt(plain.SessionKey, res.EncryptedData, res.IV, testAppID)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "unionId")
	info, err = wxcrypto.DecryptUserInfo(plain.SessionKey, res.EncryptedData, res.IV, testAppID)
	require.NoError(t, err)
	require.Equal(t, emulator.DefaultNickName, info.NickName)
	require.Equal(t, emulator.DefaultAvatarURL, info.AvatarURL)
	require.Equal(t, 0, info.Gender)
}

func TestDeviceUserInfoForeignWatermark(t *testing.T) {
	e := newEnv(t)
	dev := e.login(emulator.LoginRequest{})
	res, err := e.emu.UserInfo(emulator.UserInfoRequest{OpenID: dev.OpenID, WatermarkAppID: "wx9999999999999999"})
	require.NoError(t, err)
	_, err = wxcrypto.DecryptUserInfo(dev.SessionKey, res.EncryptedData, res.IV, testAppID)
	require.ErrorIs(t, err, wxcrypto.ErrAppIDMismatch)
}

// The device calls wx.login after producing encrypted data: the data no
// longer decrypts with the new (current) session key. This is what the API
// must answer with "log in again" (409).
func TestReloginMakesOlderEncryptedDataStale(t *testing.T) {
	e := newEnv(t)
	first := e.login(emulator.LoginRequest{})
	info, err := e.emu.UserInfo(emulator.UserInfoRequest{OpenID: first.OpenID})
	require.NoError(t, err)
	phone, err := e.emu.Phone(emulator.PhoneRequest{OpenID: first.OpenID, Phone: "13800000000"})
	require.NoError(t, err)

	second := e.login(emulator.LoginRequest{OpenID: first.OpenID})
	current := e.code2Session(second.Code).str("session_key")
	require.Equal(t, second.SessionKey, current)
	require.NotEqual(t, first.SessionKey, current)

	_, err = wxcrypto.DecryptUserInfo(current, info.EncryptedData, info.IV, testAppID)
	require.ErrorIs(t, err, wxcrypto.ErrStaleSessionKey)
	_, err = wxcrypto.DecryptPhone(current, phone.EncryptedData, phone.IV, testAppID)
	require.ErrorIs(t, err, wxcrypto.ErrStaleSessionKey)
	require.False(t, wxcrypto.VerifyRawData(info.RawData, info.Signature, current))

	// Data produced after the new login decrypts.
	fresh, err := e.emu.UserInfo(emulator.UserInfoRequest{OpenID: first.OpenID})
	require.NoError(t, err)
	_, err = wxcrypto.DecryptUserInfo(current, fresh.EncryptedData, fresh.IV, testAppID)
	require.NoError(t, err)
}

func TestDevicePhone(t *testing.T) {
	e := newEnv(t)
	dev := e.login(emulator.LoginRequest{})
	a := e.device(http.MethodPost, "/emulator/phone", `{"openid":"`+dev.OpenID+`","phone":"+8613800000000"}`)
	require.Equal(t, http.StatusOK, a.status, "%s", a.raw)
	require.Len(t, a.json, 3)
	require.NotEmpty(t, a.str("code"))
	info, err := wxcrypto.DecryptPhone(dev.SessionKey, a.str("encrypted_data"), a.str("iv"), testAppID)
	require.NoError(t, err)
	require.Equal(t, "13800000000", info.PurePhoneNumber)
	require.Equal(t, wxcrypto.CountryCode("86"), info.CountryCode)
}

func TestDeviceAPIRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	dev := e.login(emulator.LoginRequest{})
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"login bad json", "POST", "/emulator/login", `{"openid":`, 400, "invalid_json"},
		{"login not an object", "POST", "/emulator/login", `"oX"`, 400, "invalid_json"},
		{"login unknown field", "POST", "/emulator/login", `{"open_id":"oX"}`, 400, "invalid_json"},
		{"login wrong type", "POST", "/emulator/login", `{"openid":123}`, 400, "invalid_json"},
		{"login bad openid", "POST", "/emulator/login", `{"openid":"o x"}`, 400, "invalid_openid"},
		{"login long openid", "POST", "/emulator/login", `{"openid":"` + strings.Repeat("o", 129) + `"}`, 400, "invalid_openid"},
		{"login bad unionid", "POST", "/emulator/login", `{"unionid":"u/1"}`, 400, "invalid_unionid"},
		{"login bad session key", "POST", "/emulator/login", `{"session_key":"abc"}`, 400, "invalid_session_key"},
		{"login session key with space", "POST", "/emulator/login", `{"session_key":"o0q0otL8aEzpcZL/FT9WsQ =="}`, 400, "invalid_session_key"},
		{"login GET", "GET", "/emulator/login", ``, 405, "method_not_allowed"},
		{"login too large", "POST", "/emulator/login", `{"openid":"` + strings.Repeat("o", 70<<10) + `"}`, 413, "body_too_large"},
		{"userinfo no openid", "POST", "/emulator/userinfo", `{}`, 400, "invalid_openid"},
		{"userinfo unknown openid", "POST", "/emulator/userinfo", `{"openid":"oNobody"}`, 400, "unknown_openid"},
		{"userinfo bad gender", "POST", "/emulator/userinfo", `{"openid":"` + dev.OpenID + `","gender":3}`, 400, "invalid_gender"},
		{"userinfo gender as text", "POST", "/emulator/userinfo", `{"openid":"` + dev.OpenID + `","gender":"1"}`, 400, "invalid_json"},
		{"phone missing", "POST", "/emulator/phone", `{"openid":"` + dev.OpenID + `"}`, 400, "invalid_phone"},
		{"phone letters", "POST", "/emulator/phone", `{"openid":"` + dev.OpenID + `","phone":"abc"}`, 400, "invalid_phone"},
		{"phone unknown openid", "POST", "/emulator/phone", `{"openid":"oNobody","phone":"13800000000"}`, 400, "unknown_openid"},
		{"stats POST", "POST", "/emulator/stats", ``, 405, "method_not_allowed"},
		{"faults PUT", "PUT", "/emulator/faults", ``, 405, "method_not_allowed"},
		{"unknown device path", "POST", "/emulator/nope", `{}`, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireDeviceError(t, e.device(c.method, c.path, c.body), c.status, c.code)
		})
	}
}

func TestDeviceResponsesAreJSONOfTheContract(t *testing.T) {
	// The contract's field names, checked through the Go types too.
	b, err := json.Marshal(emulator.LoginResponse{})
	require.NoError(t, err)
	require.JSONEq(t, `{"code":"","openid":"","unionid":""}`, string(b), "an OAuth app's answer has no session_key")
	b, err = json.Marshal(emulator.LoginResponse{SessionKey: "k"})
	require.NoError(t, err)
	require.JSONEq(t, `{"code":"","openid":"","unionid":"","session_key":"k"}`, string(b))
	b, err = json.Marshal(emulator.UserInfoResponse{})
	require.NoError(t, err)
	require.JSONEq(t, `{"raw_data":"","signature":"","encrypted_data":"","iv":""}`, string(b))
	b, err = json.Marshal(emulator.PhoneResponse{})
	require.NoError(t, err)
	require.JSONEq(t, `{"code":"","encrypted_data":"","iv":""}`, string(b))
}
