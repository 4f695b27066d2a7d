package douyin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
	"github.com/wxlogin/wxlogin/modules/douyin"
	"github.com/wxlogin/wxlogin/modules/douyin/douyinemu"
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
)

func classify(t *testing.T, err error) provider.Kind {
	t.Helper()
	require.Error(t, err)
	platform, kind, ok := provider.Classify(err)
	require.True(t, ok, "every error is classified: %v", err)
	assert.Equal(t, "douyin", platform)
	return kind
}

func TestLoginWithBothCodes(t *testing.T) {
	e := newEnv(t)
	dev := e.login(t, douyinemu.LoginRequest{OpenID: "DYUSER", UnionID: "DYUNION", Device: "phone-1"})
	require.NotEmpty(t, dev.Code)
	require.NotEmpty(t, dev.AnonymousCode)
	p := douyin.NewProvider(e.client(t, nil))
	id, err := p.Login(context.Background(), e.app(), provider.Credentials{Code: dev.Code, AnonymousCode: dev.AnonymousCode})
	require.NoError(t, err)
	assert.Equal(t, provider.Identity{
		Provider: "douyin", Kind: "miniprogram", AppID: appID, OpenID: "DYUSER", UnionID: "DYUNION",
		SessionKey: provider.Secret(dev.SessionKey), AnonymousOpenID: dev.AnonymousOpenID,
	}, id)
}

func TestLoginWithCodeOnly(t *testing.T) {
	e := newEnv(t)
	dev := e.login(t, douyinemu.LoginRequest{OpenID: "DYUSER"})
	id, err := douyin.NewProvider(e.client(t, nil)).Login(context.Background(), e.app(), provider.Credentials{Code: dev.Code})
	require.NoError(t, err)
	assert.Equal(t, "DYUSER", id.OpenID)
	assert.Equal(t, provider.Secret(dev.SessionKey), id.SessionKey)
	assert.Empty(t, id.AnonymousOpenID, "anonymous_openid only for an anonymous code [D]")
	assert.Empty(t, id.UnionID)
}

func TestLoginAnonymousOnly(t *testing.T) {
	e := newEnv(t)
	dev := e.login(t, douyinemu.LoginRequest{Anonymous: true, Device: "kiosk"})
	assert.Empty(t, dev.Code, "a device not logged in to Douyin gets no code")
	assert.Empty(t, dev.OpenID)
	id, err := douyin.NewProvider(e.client(t, nil)).Login(context.Background(), e.app(), provider.Credentials{AnonymousCode: dev.AnonymousCode})
	require.NoError(t, err)
	assert.Equal(t, provider.Identity{Provider: "douyin", Kind: "miniprogram", AppID: appID, AnonymousOpenID: dev.AnonymousOpenID}, id)
	assert.Empty(t, id.SessionKey)
}

func TestDeviceFixesTheAnonymousOpenID(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, nil)
	ctx := context.Background()
	a1 := e.login(t, douyinemu.LoginRequest{Anonymous: true, Device: "tablet"})
	a2 := e.login(t, douyinemu.LoginRequest{OpenID: "LATER", Device: "tablet"}) // the same device, now logged in
	b := e.login(t, douyinemu.LoginRequest{Anonymous: true})                    // a new device
	s1, err := c.Code2Session(ctx, appID, "", a1.AnonymousCode)
	require.NoError(t, err)
	s2, err := c.Code2Session(ctx, appID, a2.Code, a2.AnonymousCode)
	require.NoError(t, err)
	s3, err := c.Code2Session(ctx, appID, "", b.AnonymousCode)
	require.NoError(t, err)
	assert.Equal(t, s1.AnonymousOpenID, s2.AnonymousOpenID, "one device, one anonymous_openid")
	assert.Equal(t, "LATER", s2.OpenID, "the anonymous user logged in: both ids, for the lead's anonymous → real merge")
	assert.NotEqual(t, s1.AnonymousOpenID, s3.AnonymousOpenID)
}

func TestCodeErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(t, nil)
	errNo := func(err error) int {
		var de *douyin.Error
		require.ErrorAs(t, err, &de)
		return de.Code
	}

	t.Run("unknown code", func(t *testing.T) {
		_, err := c.Code2Session(ctx, appID, "nope", "")
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
		assert.Equal(t, 40018, errNo(err))
		var de *douyin.Error
		require.ErrorAs(t, err, &de)
		assert.NotEmpty(t, de.LogID)
	})
	t.Run("unknown anonymous code", func(t *testing.T) {
		_, err := c.Code2Session(ctx, appID, "", "nope")
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
		assert.Equal(t, 40019, errNo(err))
	})
	t.Run("used codes", func(t *testing.T) {
		dev := e.login(t, douyinemu.LoginRequest{})
		_, err := c.Code2Session(ctx, appID, dev.Code, dev.AnonymousCode)
		require.NoError(t, err)
		_, err = c.Code2Session(ctx, appID, dev.Code, "")
		assert.Equal(t, provider.KindInvalidCode, classify(t, err), "single use [D]")
		_, err = c.Code2Session(ctx, appID, "", dev.AnonymousCode)
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
	})
	t.Run("expired codes", func(t *testing.T) {
		dev := e.login(t, douyinemu.LoginRequest{})
		e.clk.Advance(douyinemu.CodeTTL)
		_, err := c.Code2Session(ctx, appID, dev.Code, "")
		assert.Equal(t, 40018, errNo(err))
		_, err = c.Code2Session(ctx, appID, "", dev.AnonymousCode)
		assert.Equal(t, 40019, errNo(err))
	})
	t.Run("a bad anonymous code spends neither", func(t *testing.T) {
		dev := e.login(t, douyinemu.LoginRequest{})
		_, err := c.Code2Session(ctx, appID, dev.Code, "bad")
		assert.Equal(t, 40019, errNo(err))
		_, err = c.Code2Session(ctx, appID, dev.Code, "")
		require.NoError(t, err)
	})
	t.Run("code of another app", func(t *testing.T) {
		dev := e.login(t, douyinemu.LoginRequest{AppID: otherApp})
		_, err := c.Code2Session(ctx, appID, dev.Code, "")
		assert.Equal(t, 40018, errNo(err))
	})
	t.Run("no code at all is answered locally", func(t *testing.T) {
		before := e.emu.Calls()[douyinemu.PathCode2Session]
		_, err := c.Code2Session(ctx, appID, "", "")
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
		assert.Equal(t, before, e.emu.Calls()[douyinemu.PathCode2Session])
	})
}

func TestCredentialErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for name, tc := range map[string]struct {
		edit  func(*config.App)
		errNo int
	}{
		"unknown appid": {func(a *config.App) { a.AppID = "tt-unknown" }, 40015},
		"wrong secret":  {func(a *config.App) { a.Secret = "wrong" }, 40017},
	} {
		t.Run(name, func(t *testing.T) {
			a := e.app()
			tc.edit(&a)
			c := e.client(t, tc.edit)
			dev := e.login(t, douyinemu.LoginRequest{})
			_, err := c.Code2Session(ctx, a.AppID, dev.Code, "")
			assert.Equal(t, provider.KindMisconfigured, classify(t, err))
			var de *douyin.Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tc.errNo, de.Code)
			_, err = c.AccessToken(ctx, a.AppID)
			assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		})
	}
	t.Run("an app the client does not serve", func(t *testing.T) {
		_, err := e.client(t, nil).Code2Session(ctx, "tt-other", "c", "")
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		_, err = douyin.NewProvider(e.client(t, nil)).Login(ctx, config.App{Platform: "qq", AppID: appID}, provider.Credentials{Code: "c"})
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
	})
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		fault douyinemu.Fault
		kind  provider.Kind
	}{
		{"system error", douyinemu.Fault{ErrCode: -1}, provider.KindUnavailable},
		{"bad params", douyinemu.Fault{ErrCode: 40014}, provider.KindInvalidCode},
		{"unknown err_no", douyinemu.Fault{ErrCode: 28001018}, provider.KindUnknown},
		{"HTTP 429 (rate limit [U])", douyinemu.Fault{HTTPStatus: 429}, provider.KindRateLimited},
		{"HTTP 502", douyinemu.Fault{HTTPStatus: 502}, provider.KindUnavailable},
		{"HTML page", douyinemu.Fault{Body: "<html>busy</html>"}, provider.KindUnavailable},
		{"truncated JSON", douyinemu.Fault{Body: `{"err_no":0,"data":{"openid"`}, provider.KindUnavailable},
		{"no err_no", douyinemu.Fault{Body: `{"data":{"openid":"o","session_key":"k"}}`}, provider.KindUnavailable},
		{"v1 shape", douyinemu.Fault{Body: `{"errcode":0,"openid":"o","session_key":"k"}`}, provider.KindUnavailable},
		{"err_no of the wrong type", douyinemu.Fault{Body: `{"err_no":"zero"}`}, provider.KindUnavailable},
		{"success without data", douyinemu.Fault{Body: `{"err_no":0,"err_tips":"success"}`}, provider.KindUnavailable},
		{"success with null data", douyinemu.Fault{Body: `{"err_no":0,"data":null}`}, provider.KindUnavailable},
		{"success without openid", douyinemu.Fault{Body: `{"err_no":0,"data":{"session_key":"k","openid":"","anonymous_openid":"a"}}`}, provider.KindUnavailable},
		{"success without anonymous_openid", douyinemu.Fault{Body: `{"err_no":0,"data":{"session_key":"k","openid":"o"}}`}, provider.KindUnavailable},
		{"data of the wrong shape", douyinemu.Fault{Body: `{"err_no":0,"data":{"openid":1}}`}, provider.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t, nil)
			f := tc.fault
			f.Path, f.Count = douyinemu.PathCode2Session, 1
			require.NoError(t, e.emu.AddFault(f))
			dev := e.login(t, douyinemu.LoginRequest{})
			s, err := c.Code2Session(ctx, appID, dev.Code, dev.AnonymousCode)
			assert.Equal(t, tc.kind, classify(t, err), "%v", err)
			assert.Equal(t, douyin.Session{}, s)
			assert.Less(t, len(err.Error()), 400)
			_, err = c.Code2Session(ctx, appID, dev.Code, dev.AnonymousCode)
			require.NoError(t, err, "the fault is spent and the codes were not")
		})
	}
}

func TestErrNoWithHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"err_no":40018,"err_tips":"bad code","log_id":"L"}`)
	}))
	defer srv.Close()
	c, err := douyin.NewClient(config.Apps{{Platform: "douyin", AppID: appID, Secret: secret, BaseURL: srv.URL}})
	require.NoError(t, err)
	_, err = c.Code2Session(context.Background(), appID, "c", "")
	assert.Equal(t, provider.KindInvalidCode, classify(t, err), "err_no decides, whatever the HTTP status")
}

func TestRequestShape(t *testing.T) {
	var got struct {
		method, ctype, query string
		body                 map[string]any
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.ctype, got.query = r.Method, r.Header.Get("Content-Type"), r.URL.RawQuery
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got.body)
		_, _ = io.WriteString(w, `{"err_no":0,"err_tips":"success","data":{"openid":"o","session_key":"k","anonymous_openid":"","unionid":""}}`)
	}))
	defer srv.Close()
	c, err := douyin.NewClient(config.Apps{{Platform: "douyin", AppID: appID, Secret: secret, BaseURL: srv.URL}})
	require.NoError(t, err)
	_, err = c.Code2Session(context.Background(), appID, "the-code", "")
	require.NoError(t, err)
	assert.Equal(t, "POST", got.method)
	assert.Equal(t, "application/json", got.ctype)
	assert.Empty(t, got.query, "the secret travels in the body only")
	assert.Equal(t, map[string]any{"appid": appID, "secret": secret, "code": "the-code", "anonymous_code": ""}, got.body)
}

func TestTimeoutsAndRedirects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(t, nil, douyin.WithTimeout(100*time.Millisecond))
	require.NoError(t, e.emu.AddFault(douyinemu.Fault{Path: douyinemu.PathCode2Session, DelayMS: 2000, Count: 1}))
	_, err := c.Code2Session(ctx, appID, "c", "")
	assert.Equal(t, provider.KindUnavailable, classify(t, err))
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	followed := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed = true
			return
		}
		if r.URL.Path == "/big"+douyin.PathCode2Session {
			_, _ = io.WriteString(w, `{"err_no":0,"data":{"openid":"`+strings.Repeat("x", douyin.MaxResponseBytes)+`"}}`)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	for _, base := range []string{srv.URL, srv.URL + "/big"} {
		c, err := douyin.NewClient(config.Apps{{Platform: "douyin", AppID: appID, Secret: secret, BaseURL: base}})
		require.NoError(t, err)
		_, err = c.Code2Session(ctx, appID, "c", "")
		assert.Equal(t, provider.KindUnavailable, classify(t, err))
	}
	assert.False(t, followed, "a 307 would re-send the secret in the body elsewhere")

	_, err = douyin.NewClient(nil, douyin.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}}))
	assert.ErrorContains(t, err, "TLS")
	_, err = douyin.NewClient(config.Apps{{Platform: "douyin", AppID: appID}})
	assert.ErrorContains(t, err, "secret")
}

func TestAccessToken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	store := platformtoken.NewMemoryStore()
	a := e.client(t, nil, douyin.WithTokenStore(store), douyin.WithClock(e.clk.Now))
	b := e.client(t, nil, douyin.WithTokenStore(store), douyin.WithClock(e.clk.Now))
	var wg sync.WaitGroup
	seen := sync.Map{}
	for _, c := range []*douyin.HTTPClient{a, b} {
		for range 50 {
			wg.Go(func() {
				tok, err := c.AccessToken(ctx, appID)
				assert.NoError(t, err)
				seen.Store(tok, true)
			})
		}
	}
	wg.Wait()
	n := 0
	var tok string
	seen.Range(func(k, _ any) bool { n++; tok = k.(string); return true })
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, e.emu.Calls()[douyinemu.PathToken], "one fetch for two instances")
	assert.True(t, e.emu.TokenValid(appID, tok))

	e.clk.Advance(douyinemu.TokenTTL - platformtoken.RefreshMargin)
	next, err := a.AccessToken(ctx, appID)
	require.NoError(t, err)
	assert.NotEqual(t, tok, next)
	assert.True(t, e.emu.TokenValid(appID, tok), "the old token lives 5 more minutes [D]")
	e.clk.Advance(douyinemu.TokenGrace)
	assert.False(t, e.emu.TokenValid(appID, tok))

	for name, f := range map[string]douyinemu.Fault{
		"busy":            {ErrCode: -1},
		"bad grant_type":  {ErrCode: 40020},
		"no access_token": {Body: `{"err_no":0,"data":{"expires_in":7200}}`},
		"no expires_in":   {Body: `{"err_no":0,"data":{"access_token":"T"}}`},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			f.Path, f.Count = douyinemu.PathToken, 1
			require.NoError(t, e.emu.AddFault(f))
			c := e.client(t, nil)
			_, err := c.AccessToken(ctx, appID)
			kind := classify(t, err)
			assert.Contains(t, []provider.Kind{provider.KindUnavailable, provider.KindMisconfigured}, kind)
			_, err = c.AccessToken(ctx, appID)
			require.NoError(t, err)
		})
	}
}

func TestPhoneLegacyData(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := douyin.NewProvider(e.client(t, nil))
	dev := e.login(t, douyinemu.LoginRequest{OpenID: "PHONEUSER"})
	id, err := p.Login(ctx, e.app(), provider.Credentials{Code: dev.Code})
	require.NoError(t, err)

	data, err := e.emu.Phone(douyinemu.PhoneRequest{AppID: appID, OpenID: "PHONEUSER", Phone: "13800000000"})
	require.NoError(t, err)
	ph, err := p.Phone(ctx, e.app(), provider.PhoneRequest{EncryptedData: data.EncryptedData, IV: data.IV, SessionKey: id.SessionKey, OpenID: id.OpenID})
	require.NoError(t, err)
	assert.Equal(t, provider.Phone{Number: "13800000000", PureNumber: "13800000000", CountryCode: "86"}, ph)

	t.Run("without watermark or pure number [U]", func(t *testing.T) {
		enc, iv, err := wxcrypto.Encrypt(id.SessionKey.Reveal(), []byte(`{"phoneNumber":"13900000000"}`))
		require.NoError(t, err)
		ph, err := p.Phone(ctx, e.app(), provider.PhoneRequest{EncryptedData: enc, IV: iv, SessionKey: id.SessionKey})
		require.NoError(t, err)
		assert.Equal(t, provider.Phone{Number: "13900000000", PureNumber: "13900000000"}, ph)
	})
	t.Run("stale session key", func(t *testing.T) {
		e.login(t, douyinemu.LoginRequest{OpenID: "PHONEUSER"}) // tt.login again: a new session_key
		data, err := e.emu.Phone(douyinemu.PhoneRequest{AppID: appID, OpenID: "PHONEUSER", Phone: "13800000000"})
		require.NoError(t, err)
		_, err = p.Phone(ctx, e.app(), provider.PhoneRequest{EncryptedData: data.EncryptedData, IV: data.IV, SessionKey: id.SessionKey})
		assert.Equal(t, provider.KindSessionKey, classify(t, err))
		assert.ErrorIs(t, err, wxcrypto.ErrStaleSessionKey)
	})
	t.Run("another app's data", func(t *testing.T) {
		data, err := e.emu.Phone(douyinemu.PhoneRequest{AppID: appID, OpenID: "PHONEUSER", Phone: "1", WatermarkAppID: otherApp})
		if err == nil {
			t.Fatal("a 1-digit phone must be refused by the emulator")
		}
		dev := e.login(t, douyinemu.LoginRequest{OpenID: "PHONEUSER"})
		data, err = e.emu.Phone(douyinemu.PhoneRequest{AppID: appID, OpenID: "PHONEUSER", Phone: "13800000000", WatermarkAppID: otherApp})
		require.NoError(t, err)
		_, err = p.Phone(ctx, e.app(), provider.PhoneRequest{EncryptedData: data.EncryptedData, IV: data.IV, SessionKey: provider.Secret(dev.SessionKey)})
		classify(t, err)
		assert.ErrorIs(t, err, wxcrypto.ErrAppIDMismatch)
	})
	t.Run("malformed", func(t *testing.T) {
		_, err := p.Phone(ctx, e.app(), provider.PhoneRequest{EncryptedData: "a b", IV: "x", SessionKey: id.SessionKey})
		classify(t, err)
		assert.ErrorIs(t, err, wxcrypto.ErrMalformed)
		_, err = p.Phone(ctx, e.app(), provider.PhoneRequest{SessionKey: id.SessionKey})
		assert.ErrorIs(t, err, wxcrypto.ErrMalformed)
		enc, iv, _ := wxcrypto.Encrypt(id.SessionKey.Reveal(), []byte(`{"other":"x"}`))
		_, err = p.Phone(ctx, e.app(), provider.PhoneRequest{EncryptedData: enc, IV: iv, SessionKey: id.SessionKey})
		assert.ErrorIs(t, err, wxcrypto.ErrMalformed)
	})
	t.Run("no stored session key", func(t *testing.T) {
		_, err := p.Phone(ctx, e.app(), provider.PhoneRequest{EncryptedData: data.EncryptedData, IV: data.IV})
		assert.Equal(t, provider.KindSessionKey, classify(t, err))
	})
	t.Run("the new code flow is unsupported [U]", func(t *testing.T) {
		_, err := p.Phone(ctx, e.app(), provider.PhoneRequest{Code: "phone-code"})
		assert.Equal(t, provider.KindUnsupported, classify(t, err))
	})
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	good := e.client(t, nil)
	dev := e.login(t, douyinemu.LoginRequest{})
	s, err := good.Code2Session(ctx, appID, dev.Code, dev.AnonymousCode)
	require.NoError(t, err)
	tok, err := good.AccessToken(ctx, appID)
	require.NoError(t, err)
	var errs []error
	bad := e.client(t, func(a *config.App) { a.Secret = "WRONG-must-not-leak" })
	_, err = bad.Code2Session(ctx, appID, "c", "")
	errs = append(errs, err)
	_, err = bad.AccessToken(ctx, appID)
	errs = append(errs, err)
	require.NoError(t, e.emu.AddFault(douyinemu.Fault{Path: douyinemu.PathCode2Session, Body: `{"err_no":40017,"err_tips":"bad secret ` + secret + `"}`, Count: 1}))
	_, err = good.Code2Session(ctx, appID, "c", "")
	errs = append(errs, err)
	var texts []string
	for _, err := range errs {
		require.Error(t, err)
		texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	}
	for _, entry := range e.logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		texts = append(texts, entry.Message, string(b))
	}
	texts = append(texts, fmt.Sprintf("%v %+v %#v", s, s, s))
	for _, text := range texts {
		for _, leak := range []string{secret, "WRONG-must-not-leak", dev.SessionKey, tok} {
			assert.False(t, bytes.Contains([]byte(text), []byte(leak)), "%q leaks in %s", leak, text)
		}
	}
	assert.NotEmpty(t, e.logs.FilterMessageSnippet("check this app's appid and secret").All())
}
