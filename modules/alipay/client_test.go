package alipay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/rsakey"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/alipay"
	"github.com/wxlogin/wxlogin/modules/alipay/alipayemu"
	"github.com/wxlogin/wxlogin/modules/provider"
)

func classify(t *testing.T, err error) provider.Kind {
	t.Helper()
	require.Error(t, err)
	platform, kind, ok := provider.Classify(err)
	require.True(t, ok, "every error is classified: %v", err)
	assert.Equal(t, "alipay", platform)
	return kind
}

func TestLoginOpenIDMode(t *testing.T) {
	e := newEnv(t)
	dev := e.login(t, alipayemu.LoginRequest{UnionID: "UNION-A"})
	assert.Equal(t, "open_id", dev.IDType)
	p := alipay.NewProvider(e.client(t, nil))
	id, err := p.Login(context.Background(), e.app(), provider.Credentials{Code: dev.Code})
	require.NoError(t, err)
	assert.Equal(t, provider.Identity{Provider: "alipay", Kind: "miniprogram", AppID: appID, OpenID: dev.OpenID, UnionID: "UNION-A"}, id)
	raw, isUserID := alipay.SplitOpenID(id.OpenID)
	assert.False(t, isUserID)
	assert.Equal(t, dev.OpenID, raw)
	assert.Empty(t, id.SessionKey, "Alipay has no session key")
}

func TestLoginUserIDMode(t *testing.T) {
	e := newEnv(t, alipayemu.WithUserIDMode(appID))
	dev := e.login(t, alipayemu.LoginRequest{})
	assert.Equal(t, "user_id", dev.IDType)
	assert.True(t, strings.HasPrefix(dev.OpenID, "2088"))
	id, err := alipay.NewProvider(e.client(t, nil)).Login(context.Background(), e.app(), provider.Credentials{Code: dev.Code})
	require.NoError(t, err)
	assert.Equal(t, "user_id:"+dev.OpenID, id.OpenID, "the id type is stored with the id")
	raw, isUserID := alipay.SplitOpenID(id.OpenID)
	assert.True(t, isUserID)
	assert.Equal(t, dev.OpenID, raw)

	// The app switches to open_id: the same person is a new identity, never
	// mistaken for the old one.
	e.emu.SetUserIDMode(appID, false)
	dev2 := e.login(t, alipayemu.LoginRequest{OpenID: dev.OpenID}) // even an open_id equal to the user_id
	id2, err := alipay.NewProvider(e.client(t, nil)).Login(context.Background(), e.app(), provider.Credentials{Code: dev2.Code})
	require.NoError(t, err)
	assert.Equal(t, dev.OpenID, id2.OpenID)
	assert.NotEqual(t, id.OpenID, id2.OpenID)
}

func TestOpenIDPreferredAndSanity(t *testing.T) {
	keys(t)
	ctx := context.Background()
	cases := map[string]struct {
		node   string
		openid string
		kind   provider.Kind
	}{
		"both ids: open_id wins":   {`{"user_id":"2088102150477652","open_id":"074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5","access_token":"authusrB1"}`, "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5", 0},
		"neither id":               {`{"access_token":"authusrB1","expires_in":1296000}`, "", provider.KindUnavailable},
		"an open_id with a colon":  {`{"open_id":"user_id:2088102150477652"}`, "", provider.KindUnavailable},
		"a business code":          {`{"code":"40004","msg":"Business Failed","sub_code":"isv.code-invalid","sub_msg":"x"}`, "", provider.KindInvalidCode},
		"code 10000 is a success":  {`{"code":"10000","msg":"Success","open_id":"0abc"}`, "0abc", 0},
		"expires_in as a string":   {`{"open_id":"0abc","expires_in":"1296000"}`, "0abc", 0},
		"a node of the wrong type": {`["open_id"]`, "", provider.KindUnavailable},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, signedBody(t, emuKey, tokenNode, tc.node))
			}))
			defer srv.Close()
			pub, _ := rsakey.PublicKeyPEM(&emuKey.PublicKey)
			app := config.App{Platform: "alipay", AppID: appID, Kind: "miniprogram", BaseURL: srv.URL, PrivateKey: appKeyPEM, AlipayPublicKey: pub}
			c, err := alipay.NewClient(config.Apps{app})
			require.NoError(t, err)
			id, err := alipay.NewProvider(c).Login(ctx, app, provider.Credentials{Code: "c"})
			if tc.kind != 0 {
				assert.Equal(t, tc.kind, classify(t, err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.openid, id.OpenID)
		})
	}
}

func TestRequestShape(t *testing.T) {
	keys(t)
	var got struct {
		method, ctype, query string
		form                 url.Values
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.ctype, got.query = r.Method, r.Header.Get("Content-Type"), r.URL.RawQuery
		_ = r.ParseForm()
		got.form = r.PostForm
		_, _ = io.WriteString(w, signedBody(t, emuKey, tokenNode, `{"open_id":"0x"}`))
	}))
	defer srv.Close()
	pub, _ := rsakey.PublicKeyPEM(&emuKey.PublicKey)
	c, err := alipay.NewClient(config.Apps{{Platform: "alipay", AppID: appID, BaseURL: srv.URL, PrivateKey: appKeyPEM, AlipayPublicKey: pub}})
	require.NoError(t, err)
	_, err = c.OAuthToken(context.Background(), appID, "the-code")
	require.NoError(t, err)
	assert.Equal(t, "POST", got.method)
	assert.Equal(t, "application/x-www-form-urlencoded;charset=utf-8", got.ctype)
	assert.Empty(t, got.query, "the code travels in the body only")
	for k, v := range map[string]string{"app_id": appID, "method": "alipay.system.oauth.token", "format": "JSON", "charset": "utf-8",
		"sign_type": "RSA2", "version": "1.0", "grant_type": "authorization_code", "code": "the-code"} {
		assert.Equal(t, v, got.form.Get(k), k)
	}
	assert.NotEmpty(t, got.form.Get("sign"))
	assert.NotEmpty(t, got.form.Get("timestamp"))
}

func TestCodeErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(t, nil)
	subCode := func(err error) string {
		var ae *alipay.Error
		require.ErrorAs(t, err, &ae)
		return ae.SubCode
	}
	t.Run("unknown code", func(t *testing.T) {
		_, err := c.OAuthToken(ctx, appID, "nope")
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
		assert.Equal(t, "isv.code-invalid", subCode(err))
	})
	t.Run("used code", func(t *testing.T) {
		dev := e.login(t, alipayemu.LoginRequest{})
		_, err := c.OAuthToken(ctx, appID, dev.Code)
		require.NoError(t, err)
		_, err = c.OAuthToken(ctx, appID, dev.Code)
		assert.Equal(t, provider.KindInvalidCode, classify(t, err), "single use [D]")
	})
	t.Run("expired code", func(t *testing.T) {
		dev := e.login(t, alipayemu.LoginRequest{})
		e.clk.Advance(alipayemu.CodeTTL)
		_, err := c.OAuthToken(ctx, appID, dev.Code)
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
	})
	t.Run("another app's code", func(t *testing.T) {
		dev := e.login(t, alipayemu.LoginRequest{AppID: otherApp})
		_, err := c.OAuthToken(ctx, appID, dev.Code)
		assert.Equal(t, "isv.code-invalid", subCode(err))
	})
	t.Run("empty code is answered locally", func(t *testing.T) {
		before := e.emu.Calls()[alipayemu.PathGateway]
		_, err := c.OAuthToken(ctx, appID, "")
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
		assert.Equal(t, before, e.emu.Calls()[alipayemu.PathGateway])
	})
}

func TestCredentialErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	t.Run("unknown app_id: an unsigned error_response", func(t *testing.T) {
		c := e.client(t, func(a *config.App) { a.AppID = "2021999999999999" })
		_, err := c.OAuthToken(ctx, "2021999999999999", "c")
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		var ae *alipay.Error
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "isv.invalid-app-id", ae.SubCode)
	})
	t.Run("a private key Alipay does not know", func(t *testing.T) {
		c := e.client(t, func(a *config.App) { a.PrivateKey = appKey2PEM })
		dev := e.login(t, alipayemu.LoginRequest{})
		_, err := c.OAuthToken(ctx, appID, dev.Code)
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		var ae *alipay.Error
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "isv.invalid-signature", ae.SubCode)
		// The code was not spent.
		_, err = e.client(t, nil).OAuthToken(ctx, appID, dev.Code)
		require.NoError(t, err)
	})
	t.Run("a wrong alipay_public_key refuses every answer", func(t *testing.T) {
		pub, _ := rsakey.PublicKeyPEM(&strangerKey.PublicKey)
		c := e.client(t, func(a *config.App) { a.AlipayPublicKey = pub })
		dev := e.login(t, alipayemu.LoginRequest{})
		_, err := c.OAuthToken(ctx, appID, dev.Code)
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		assert.ErrorIs(t, err, alipay.ErrBadSignature)
		var se *alipay.SignatureError
		require.ErrorAs(t, err, &se)
		_, err = c.OAuthToken(ctx, appID, "nope") // a signed error_response
		assert.ErrorIs(t, err, alipay.ErrBadSignature)
		assert.NotEmpty(t, e.logs.FilterMessageSnippet("check this app's alipay_public_key").All())
	})
	t.Run("an app the client does not serve", func(t *testing.T) {
		_, err := e.client(t, nil).OAuthToken(ctx, "2021000000000009", "c")
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		_, err = alipay.NewProvider(e.client(t, nil)).Login(ctx, config.App{Platform: "qq", AppID: appID}, provider.Credentials{Code: "c"})
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
	})
}

func TestTamperedAndUnsignedAnswersAreRefused(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(body []byte) []byte{
		"a byte of the open_id changed": func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"open_id":"`)) + len(`"open_id":"`)
			b[i+1] ^= 1
			return b
		},
		"a field added": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`{"access_token"`), []byte(`{"user_id":"2088000000000000","access_token"`), 1)
		},
		"re-serialized (spaces)": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"open_id":`), []byte(`"open_id": `), 1)
		},
		"the signature removed": func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte(`,"sign":`))
			return append(b[:i], '}')
		},
		"the signature of another answer": func(b []byte) []byte {
			other := signedBody(t, emuKey, tokenNode, `{"open_id":"0other"}`)
			i, j := bytes.LastIndex(b, []byte(`,"sign":`)), strings.LastIndex(other, `,"sign":`)
			return append(b[:i], other[j:]...)
		},
		"signed by someone else": func(b []byte) []byte {
			var m map[string]json.RawMessage
			_ = json.Unmarshal(b, &m)
			return []byte(signedBody(t, strangerKey, tokenNode, string(m[tokenNode])))
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.wrap = func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
					_, _ = w.Write(tamper(rec.Body.Bytes()))
				})
			}
			dev := e.login(t, alipayemu.LoginRequest{})
			_, err := alipay.NewProvider(e.client(t, nil)).Login(ctx, e.app(), provider.Credentials{Code: dev.Code})
			assert.ErrorIs(t, err, alipay.ErrBadSignature)
			assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		})
	}
}

// The signature covers the node's bytes as received: spaces, \/ and \u
// escapes included. Verifying a re-serialized node would fail here.
func TestVerificationUsesTheRawBytes(t *testing.T) {
	keys(t)
	node := `{ "open_id" : "0abc\/def\u0041", "union_id":"U/1", "access_token":"authusrB\u002b" }`
	body := fmt.Sprintf("\ufeff  {\"sign\":%q , %q :%s}\n", mustSign(t, node), tokenNode, node)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) }))
	defer srv.Close()
	pub, _ := rsakey.PublicKeyPEM(&emuKey.PublicKey)
	c, err := alipay.NewClient(config.Apps{{Platform: "alipay", AppID: appID, BaseURL: srv.URL, PrivateKey: appKeyPEM, AlipayPublicKey: pub}})
	require.NoError(t, err)
	tok, err := c.OAuthToken(context.Background(), appID, "c")
	require.NoError(t, err)
	assert.Equal(t, "0abc/defA", tok.OpenID)
	assert.Equal(t, "U/1", tok.UnionID)
}

func mustSign(t *testing.T, s string) string {
	sig, err := alipay.SignBytes(emuKey, []byte(s))
	require.NoError(t, err)
	return sig
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		fault alipayemu.Fault
		kind  provider.Kind
	}{
		{"service unavailable", alipayemu.Fault{ErrCode: 20000, SubCode: "isp.unknow-error"}, provider.KindUnavailable},
		{"call limited", alipayemu.Fault{ErrCode: 40005}, provider.KindRateLimited},
		{"business failed", alipayemu.Fault{SubCode: "isv.something"}, provider.KindUnknown},
		{"insufficient permissions", alipayemu.Fault{ErrCode: 40006, SubCode: "isv.insufficient-isv-permissions"}, provider.KindMisconfigured},
		{"HTTP 502", alipayemu.Fault{HTTPStatus: 502}, provider.KindUnavailable},
		{"HTTP 429", alipayemu.Fault{HTTPStatus: 429}, provider.KindRateLimited},
		{"HTML page", alipayemu.Fault{Body: "<html>系统繁忙</html>"}, provider.KindUnavailable},
		{"truncated JSON", alipayemu.Fault{Body: `{"alipay_system_oauth_token_response":{"open_id":"0`}, provider.KindUnavailable},
		{"JSON array", alipayemu.Fault{Body: `[{}]`}, provider.KindUnavailable},
		{"no node", alipayemu.Fault{Body: `{"sign":"x"}`}, provider.KindUnavailable},
		{"two nodes of one name", alipayemu.Fault{Body: `{"alipay_system_oauth_token_response":{},"alipay_system_oauth_token_response":{}}`}, provider.KindUnavailable},
		{"sign not a string", alipayemu.Fault{Body: `{"alipay_system_oauth_token_response":{"open_id":"0a"},"sign":1}`}, provider.KindUnavailable},
		{"unsigned success", alipayemu.Fault{Body: `{"alipay_system_oauth_token_response":{"open_id":"0attacker"}}`}, provider.KindMisconfigured},
		{"unsigned error without code", alipayemu.Fault{Body: `{"error_response":{}}`}, provider.KindUnavailable},
		{"data after the object", alipayemu.Fault{Body: `{"error_response":{"code":"40002"}} {}`}, provider.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t, nil)
			f := tc.fault
			f.Path, f.Count = alipayemu.PathGateway, 1
			require.NoError(t, e.emu.AddFault(f))
			dev := e.login(t, alipayemu.LoginRequest{})
			tok, err := c.OAuthToken(ctx, appID, dev.Code)
			assert.Equal(t, tc.kind, classify(t, err), "%v", err)
			assert.Equal(t, alipay.OAuthToken{}, tok)
			assert.Less(t, len(err.Error()), 500)
			_, err = c.OAuthToken(ctx, appID, dev.Code)
			require.NoError(t, err, "the fault is spent and the code was not")
		})
	}
}

func TestTimeoutAndRedirect(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(t, nil, alipay.WithTimeout(100*time.Millisecond))
	require.NoError(t, e.emu.AddFault(alipayemu.Fault{Path: alipayemu.PathGateway, DelayMS: 2000, Count: 1}))
	_, err := c.OAuthToken(ctx, appID, "c")
	assert.Equal(t, provider.KindUnavailable, classify(t, err))
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	followed := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed = true
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c = e.client(t, func(a *config.App) { a.BaseURL = srv.URL })
	_, err = c.OAuthToken(ctx, appID, "c")
	assert.Equal(t, provider.KindUnavailable, classify(t, err))
	assert.False(t, followed)
}

func TestClientRefusesBadSetups(t *testing.T) {
	keys(t)
	for name, app := range map[string]config.App{
		"no private key": {Platform: "alipay", AppID: appID, AlipayPublicKey: "x"},
		"bad public key": {Platform: "alipay", AppID: appID, PrivateKey: appKeyPEM, AlipayPublicKey: "x"},
		"bad AES key":    {Platform: "alipay", AppID: appID, PrivateKey: appKeyPEM, AlipayPublicKey: readPub(t), AESKey: "short"},
		"bad base URL":   {Platform: "alipay", AppID: appID, PrivateKey: appKeyPEM, AlipayPublicKey: readPub(t), BaseURL: "gopher://x"},
	} {
		_, err := alipay.NewClient(config.Apps{app})
		assert.Error(t, err, name)
		assert.NotContains(t, err.Error(), "MII", "no key material in %s", name)
	}
}

func readPub(t *testing.T) string {
	pub, _ := rsakey.PublicKeyPEM(&emuKey.PublicKey)
	return pub
}

func TestPhone(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := alipay.NewProvider(e.client(t, nil))
	phone := func(resp string) (provider.Phone, error) {
		return p.Phone(ctx, e.app(), provider.PhoneRequest{Response: resp})
	}
	res, err := e.emu.Phone(alipayemu.PhoneRequest{Phone: "13800000000", AppID: appID})
	require.NoError(t, err)
	ph, err := phone(res.Response)
	require.NoError(t, err)
	assert.Equal(t, provider.Phone{Number: "13800000000", PureNumber: "13800000000"}, ph)

	var content map[string]string
	require.NoError(t, json.Unmarshal([]byte(res.Response), &content))
	rebuild := func(edit func(map[string]string)) string {
		m := map[string]string{}
		for k, v := range content {
			m[k] = v
		}
		edit(m)
		return mustJSON(m)
	}

	t.Run("a tampered ciphertext", func(t *testing.T) {
		_, err := phone(rebuild(func(m map[string]string) { m["response"] = "A" + m["response"][1:] }))
		assert.Equal(t, provider.KindRefused, classify(t, err))
		assert.ErrorIs(t, err, alipay.ErrBadSignature)
	})
	t.Run("another signature", func(t *testing.T) {
		_, err := phone(rebuild(func(m map[string]string) { m["sign"] = mustSign(t, m["response"]) })) // not wrapped in quotes
		assert.ErrorIs(t, err, alipay.ErrBadSignature)
		_, err = phone(rebuild(func(m map[string]string) { delete(m, "sign") }))
		assert.ErrorIs(t, err, alipay.ErrBadSignature)
		_, err = phone(rebuild(func(m map[string]string) { m["sign_type"] = "RSA" }))
		assert.ErrorIs(t, err, alipay.ErrBadSignature)
	})
	t.Run("a wrong aes_key", func(t *testing.T) {
		c := e.client(t, func(a *config.App) { a.AESKey = "AAAAAAAAAAAAAAAAAAAAAA==" })
		_, err := c.PhoneNumber(ctx, appID, res.Response)
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
	})
	t.Run("no aes_key", func(t *testing.T) {
		c := e.client(t, func(a *config.App) { a.AESKey = "" })
		_, err := c.PhoneNumber(ctx, appID, res.Response)
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
	})
	t.Run("malformed", func(t *testing.T) {
		for _, s := range []string{"", "not json", `{"sign":"x"}`, `[]`} {
			_, err := phone(s)
			classify(t, err)
			assert.ErrorIs(t, err, wxcrypto.ErrMalformed, s)
		}
	})
	t.Run("Alipay refuses: the app lacks the capability", func(t *testing.T) {
		res, err := e.emu.Phone(alipayemu.PhoneRequest{AppID: appID, SubCode: "isv.invalid-auth-relations"})
		require.NoError(t, err)
		_, err = phone(res.Response)
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		var ae *alipay.Error
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "40003", ae.Code)
	})
	t.Run("an unencrypted content, signed as is", func(t *testing.T) {
		plain := `{"code":"10000","msg":"Success","mobile":"13900000000"}`
		ph, err := phone(mustJSON(map[string]string{"response": plain, "sign": mustSign(t, plain)}))
		require.NoError(t, err)
		assert.Equal(t, "13900000000", ph.Number)
	})
	t.Run("the emulator needs an aes_key", func(t *testing.T) {
		_, err := e.emu.Phone(alipayemu.PhoneRequest{AppID: otherApp, Phone: "13800000000"})
		assert.Error(t, err)
	})
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(t, nil)
	dev := e.login(t, alipayemu.LoginRequest{})
	var tokens []string
	e.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var m map[string]json.RawMessage
			var n map[string]any
			if json.Unmarshal(rec.Body.Bytes(), &m) == nil && json.Unmarshal(m[tokenNode], &n) == nil {
				tokens = append(tokens, fmt.Sprint(n["access_token"]), fmt.Sprint(n["refresh_token"]))
			}
			w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	tok, err := c.OAuthToken(ctx, appID, dev.Code)
	require.NoError(t, err)
	var errs []error
	_, err = c.OAuthToken(ctx, appID, dev.Code)
	errs = append(errs, err)
	pub, _ := rsakey.PublicKeyPEM(&strangerKey.PublicKey)
	_, err = e.client(t, func(a *config.App) { a.AlipayPublicKey = pub }).OAuthToken(ctx, appID, "CODE-must-not-leak")
	errs = append(errs, err)
	res, _ := e.emu.Phone(alipayemu.PhoneRequest{AppID: appID, Phone: "13800000000"})
	_, err = e.client(t, func(a *config.App) { a.AESKey = "AAAAAAAAAAAAAAAAAAAAAA==" }).PhoneNumber(ctx, appID, res.Response)
	errs = append(errs, err)
	require.Len(t, tokens, 2)
	leaks := append(tokens, dev.Code, "CODE-must-not-leak", aesKey, "AAAAAAAAAAAAAAAAAAAAAA==", strings.Split(appKeyPEM, "\n")[3])
	var texts []string
	for _, err := range errs {
		require.Error(t, err)
		texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	}
	for _, entry := range e.logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		texts = append(texts, entry.Message, string(b))
	}
	texts = append(texts, fmt.Sprintf("%v %+v %#v", tok, tok, tok), mustJSON(tok))
	for _, text := range texts {
		for _, leak := range leaks {
			assert.NotContains(t, text, leak)
		}
	}
	assert.NotEmpty(t, e.logs.FilterMessage("alipay call").All(), "one line per call")
}
