package wechat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/wxcrypto"
)

func TestCode2SessionDecodesWhateverTheContentType(t *testing.T) {
	for _, ctype := range []string{"text/plain", "application/json; encoding=utf-8", "text/html; charset=gbk", ""} {
		t.Run(ctype, func(t *testing.T) {
			f := newFake(t)
			f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) {
				writeBody(w, ctype, `{"session_key":"o0q0otL8aEzpcZL\/FT9WsQ==","openid":"oA","unionid":"uB"}`)
			})
			s, err := f.client(t, nil).Code2Session(context.Background(), "the-code")
			require.NoError(t, err)
			assert.Equal(t, Session{OpenID: "oA", UnionID: "uB", SessionKey: testSessionKey}, s)
			assert.Equal(t, testSessionKey, s.SessionKey.Reveal(), `\/ must decode to /`)
		})
	}
}

func TestCode2SessionSendsTheDocumentedRequest(t *testing.T) {
	f := newFake(t)
	_, err := f.client(t, nil).Code2Session(context.Background(), "code+with/odd=chars")
	require.NoError(t, err)
	q, err := url.ParseQuery(f.lastQuery(pathCode2Session))
	require.NoError(t, err)
	assert.Equal(t, url.Values{
		"appid":      {testAppID},
		"secret":     {testSecret},
		"js_code":    {"code+with/odd=chars"},
		"grant_type": {"authorization_code"},
	}, q)
}

func TestCode2SessionWithoutUnionID(t *testing.T) {
	f := newFake(t)
	f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "text/plain", `{"session_key":"k","openid":"oA"}`)
	})
	s, err := f.client(t, nil).Code2Session(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, "", s.UnionID)
}

// lessons.md: `$data['openid']` without checking errcode turns an error into
// a user with an empty openid.
func TestCode2SessionRefusesAnIncompleteSuccess(t *testing.T) {
	for _, body := range []string{`{}`, `null`, `{"openid":"oA"}`, `{"session_key":"k"}`, `{"errcode":0,"errmsg":"ok"}`, `{"openid":"","session_key":""}`} {
		t.Run(body, func(t *testing.T) {
			f := newFake(t)
			f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) { writeBody(w, "text/plain", body) })
			s, err := f.client(t, nil).Code2Session(context.Background(), "c")
			require.Error(t, err)
			assert.Equal(t, Session{}, s)
			assert.ErrorIs(t, err, ErrBadResponse)
			assert.ErrorIs(t, err, ErrUnavailable)
		})
	}
}

func TestEmptyArgumentsAreAnsweredLocally(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil)
	ctx := context.Background()
	_, err := c.Code2Session(ctx, "")
	assert.True(t, IsKind(err, KindInvalidCode), "%v", err)
	_, err = c.GetPhoneNumber(ctx, "")
	assert.True(t, IsKind(err, KindInvalidCode), "%v", err)
	err = c.CheckSessionKey(ctx, "", testSessionKey)
	assert.True(t, IsKind(err, KindSessionKey), "%v", err)
	_, err = c.ResetUserSessionKey(ctx, testOpenID, "")
	assert.True(t, IsKind(err, KindSessionKey), "%v", err)
	assert.Zero(t, f.count(pathCode2Session)+f.fetches()+f.count(pathPhoneNumber), "nothing sent to WeChat")
}

func TestUnusableBodies(t *testing.T) {
	huge := `{"openid":"` + strings.Repeat("x", MaxResponseBytes) + `","session_key":"k"}`
	cases := []struct{ name, ctype, body string }{
		{"empty html (bad appid on /cgi-bin/token)", "text/html; charset=gbk", ""},
		{"whitespace only", "text/plain", " \r\n"},
		{"html page", "text/html", "<html><body>502 Bad Gateway</body></html>"},
		{"truncated json", "text/plain", `{"openid":"oA","sess`},
		{"json array", "application/json", `[1,2]`},
		{"errcode of the wrong type", "text/plain", `{"errcode":{"x":1}}`},
		{"larger than the limit", "text/plain", huge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) { writeBody(w, tc.ctype, tc.body) })
			_, err := f.client(t, nil).Code2Session(context.Background(), "c")
			var re *ResponseError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, pathCode2Session, re.Path)
			assert.ErrorIs(t, err, ErrUnavailable)
			assert.ErrorIs(t, err, ErrBadResponse)
			assert.Equal(t, KindUnavailable, KindOf(err))
			assert.Less(t, len(err.Error()), 400, "the body is not copied into the error")
		})
	}
}

func TestEmptyTokenBodyFailsTheBusinessCall(t *testing.T) {
	f := newFake(t)
	f.handle(pathToken, func(w http.ResponseWriter, r *http.Request) { writeBody(w, "text/html; charset=gbk", "") })
	_, err := f.client(t, func(c *config.WeChat) { c.StableToken = false }).GetPhoneNumber(context.Background(), "c")
	var re *ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, pathToken, re.Path)
	assert.Equal(t, "text/html; charset=gbk", re.ContentType)
	assert.Zero(t, f.count(pathPhoneNumber))
}

func TestNonOKStatusWithoutErrcodeIsUnusable(t *testing.T) {
	f := newFake(t)
	f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		writeBody(w, "application/json", `{"openid":"oA","session_key":"k"}`)
	})
	_, err := f.client(t, nil).Code2Session(context.Background(), "c")
	assert.ErrorIs(t, err, ErrBadResponse)
}

func TestSlowServerTimesOutAsUnavailable(t *testing.T) {
	f := newFake(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	block := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	f.handle(pathToken, block)
	f.handle(pathCode2Session, block)
	c := f.client(t, func(c *config.WeChat) { c.Timeout = 100 * time.Millisecond; c.StableToken = false })

	_, err := c.Code2Session(context.Background(), "c")
	var te *TransportError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, pathCode2Session, te.Path)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, KindUnavailable, KindOf(err))
	var ue *url.Error
	assert.False(t, errors.As(err, &ue), "the *url.Error (with the URL) must be gone")
	assert.NotContains(t, err.Error(), testSecret)
	assert.NotContains(t, err.Error(), "secret=")
	assert.NotContains(t, err.Error(), f.srv.URL)

	_, err = c.AccessToken(context.Background())
	require.ErrorAs(t, err, &te)
	assert.Equal(t, pathToken, te.Path)
	assert.NotContains(t, err.Error(), testSecret)
}

func TestCallerDeadlineIsRespected(t *testing.T) {
	f := newFake(t)
	f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := f.client(t, nil) // 5s client timeout
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Code2Session(ctx, "c")
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestConnectionRefusedIsUnavailable(t *testing.T) {
	f := newFake(t)
	f.srv.Close()
	c := f.client(t, func(c *config.WeChat) { c.StableToken = false })
	_, err := c.Code2Session(context.Background(), "c")
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.NotContains(t, err.Error(), testSecret)
	_, err = c.GetPhoneNumber(context.Background(), "c")
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.NotContains(t, err.Error(), testSecret)
	assert.NotContains(t, err.Error(), "?")
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect was followed to %s", r.URL.Path)
	}))
	defer elsewhere.Close()
	f := newFake(t)
	f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusFound)
	})
	_, err := f.client(t, nil).Code2Session(context.Background(), "c")
	assert.ErrorIs(t, err, ErrBadResponse)
}

func TestNewClientRefusesAnInsecureHTTPClient(t *testing.T) {
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	_, err := NewClient(newFake(t).config(), WithHTTPClient(insecure))
	assert.Error(t, err)
}

func TestNewClientValidatesItsConfig(t *testing.T) {
	for _, cfg := range []config.WeChat{
		{Secret: "s", BaseURL: "https://api.weixin.qq.com"},
		{AppID: "a", BaseURL: "https://api.weixin.qq.com"},
		{AppID: "a", Secret: "s", BaseURL: "ftp://api.weixin.qq.com"},
		{AppID: "a", Secret: "s", BaseURL: "https://api.weixin.qq.com/?x=1"},
	} {
		_, err := NewClient(cfg)
		assert.Error(t, err, "%+v", cfg.BaseURL)
	}
}

func TestErrcodeKinds(t *testing.T) {
	ctx := context.Background()
	code2session := func(c *HTTPClient) error { _, err := c.Code2Session(ctx, "c"); return err }
	phone := func(c *HTTPClient) error { _, err := c.GetPhoneNumber(ctx, "c"); return err }
	token := func(c *HTTPClient) error { _, err := c.AccessToken(ctx); return err }
	check := func(c *HTTPClient) error { return c.CheckSessionKey(ctx, testOpenID, testSessionKey) }
	reset := func(c *HTTPClient) error {
		_, err := c.ResetUserSessionKey(ctx, testOpenID, testSessionKey)
		return err
	}
	type call struct {
		path string
		do   func(*HTTPClient) error
	}
	on := map[string]call{
		"code2session": {pathCode2Session, code2session},
		"phone":        {pathPhoneNumber, phone},
		"stable_token": {pathStableToken, token},
		"check":        {pathCheckSession, check},
		"reset":        {pathResetSessionKey, reset},
	}
	cases := []struct {
		api  string
		code int
		kind Kind
	}{
		{"code2session", -1, KindUnavailable},
		{"code2session", 40029, KindInvalidCode},
		{"code2session", 40163, KindInvalidCode},
		{"code2session", 41008, KindInvalidCode},
		{"code2session", 40226, KindBlocked},
		{"code2session", 45011, KindRateLimited},
		{"code2session", 40013, KindMisconfigured},
		{"code2session", 40125, KindMisconfigured},
		{"code2session", 99999, KindUnknown},
		{"stable_token", -1, KindUnavailable},
		{"stable_token", 40002, KindMisconfigured},
		{"stable_token", 40013, KindMisconfigured},
		{"stable_token", 40125, KindMisconfigured},
		{"stable_token", 40164, KindMisconfigured},
		{"stable_token", 40243, KindMisconfigured},
		{"stable_token", 41002, KindMisconfigured},
		{"stable_token", 41004, KindMisconfigured},
		{"stable_token", 89503, KindMisconfigured},
		{"stable_token", 45009, KindRateLimited},
		{"stable_token", 45011, KindRateLimited},
		{"stable_token", 43002, KindUnknown},
		{"phone", -1, KindUnavailable},
		{"phone", 40029, KindInvalidCode},
		{"phone", 40013, KindInvalidCode},
		{"phone", 45011, KindRateLimited},
		{"phone", 40001, KindAccessToken},
		{"phone", 40014, KindAccessToken},
		{"phone", 41001, KindAccessToken},
		{"phone", 42001, KindAccessToken},
		{"check", 87009, KindSessionKey},
		{"check", 40001, KindAccessToken},
		{"reset", 87007, KindSessionKey},
		{"reset", 87009, KindSessionKey},
		{"reset", 40097, KindSessionKey},
		{"reset", 45011, KindRateLimited},
		{"reset", -1, KindUnavailable},
		{"reset", 87008, KindUnknown},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.api, tc.code), func(t *testing.T) {
			f := newFake(t)
			api := on[tc.api]
			f.handle(api.path, func(w http.ResponseWriter, r *http.Request) {
				writeBody(w, "text/plain", errcodeBody(tc.code, "something, rid: 6523a1b2-0f1e2d3c-4b5a6978"))
			})
			err := api.do(f.client(t, nil))
			var we *Error
			require.ErrorAs(t, err, &we)
			assert.Equal(t, tc.code, we.Code)
			assert.Equal(t, api.path, we.Path)
			assert.Equal(t, tc.kind, we.Kind())
			assert.Equal(t, tc.kind, KindOf(err))
			assert.Equal(t, "6523a1b2-0f1e2d3c-4b5a6978", we.RID)
			assert.Equal(t, tc.kind == KindUnavailable, errors.Is(err, ErrUnavailable))
			assert.False(t, errors.Is(err, ErrBadResponse))
		})
	}
}

func TestKindTable(t *testing.T) {
	want := map[Kind][]int{
		KindInvalidCode:   {40029, 40163, 41008},
		KindRateLimited:   {45011, 45009},
		KindBlocked:       {40226},
		KindUnavailable:   {-1},
		KindMisconfigured: {40013, 40125, 41002, 41004, 40164, 40243, 40002, 89503},
		KindAccessToken:   {40001, 40014, 41001, 42001},
		KindSessionKey:    {87007, 87009, 40097},
		KindUnknown:       {0, 1, 43002, 87008, 48001},
	}
	for kind, codes := range want {
		for _, code := range codes {
			assert.Equal(t, kind, kindOf(pathCode2Session, code), "errcode %d", code)
		}
	}
	assert.Equal(t, KindInvalidCode, kindOf(pathPhoneNumber, 40013), "40013 on the phone API: code of another appid")
	assert.Equal(t, KindMisconfigured, kindOf(pathToken, 40013))
	assert.Equal(t, KindUnknown, KindOf(nil))
	assert.Equal(t, KindUnknown, KindOf(errors.New("other")))
	assert.Equal(t, "invalid_code", KindInvalidCode.String())
}

func TestRequestID(t *testing.T) {
	for msg, want := range map[string]string{
		"invalid code, rid: 6523a1b2-0f1e2d3c-4b5a6978":                                             "6523a1b2-0f1e2d3c-4b5a6978",
		"api minute-quota reach limit, must slower, retry next minute, rid: 65e1c3a1-2b3c4d5e-6f7a": "65e1c3a1-2b3c4d5e-6f7a",
		"invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist rid: 6523a1b2-0f1e2d3c-4b5a6978":  "6523a1b2-0f1e2d3c-4b5a6978",
		"invalid code, hints: [ req_id: GEbCfa0ce-VIQhA ]":                                          "GEbCfa0ce-VIQhA",
		"invalid code": "",
		"system error, grid: nothing to see here": "",
	} {
		assert.Equal(t, want, requestID(msg), msg)
	}
}

func TestGetPhoneNumber(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil)
	p, err := c.GetPhoneNumber(context.Background(), "phone-code")
	require.NoError(t, err)
	assert.Equal(t, PhoneInfo{
		PhoneNumber: "13800000000", PurePhoneNumber: "13800000000", CountryCode: "86",
		Watermark: Watermark{AppID: testAppID, Timestamp: 1637744274},
	}, p)
	assert.JSONEq(t, `{"code":"phone-code"}`, string(f.lastBody(pathPhoneNumber)))
	q, _ := url.ParseQuery(f.lastQuery(pathPhoneNumber))
	assert.Equal(t, []string{"access_token"}, keys(q))
}

func TestGetPhoneNumberCountryCodeAsNumber(t *testing.T) {
	f := newFake(t)
	f.handle(pathPhoneNumber, f.withToken(func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "text/plain", `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+1 2025550123",`+
			`"purePhoneNumber":"2025550123","countryCode":1,"watermark":{"timestamp":1637744274,"appid":"`+testAppID+`"}}}`)
	}))
	p, err := f.client(t, nil).GetPhoneNumber(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, "1", p.CountryCode)
	assert.Equal(t, int64(1637744274), p.Watermark.Timestamp)
}

func TestGetPhoneNumberRefusesUnusableAnswers(t *testing.T) {
	for name, body := range map[string]string{
		"no phone_info":       `{"errcode":0,"errmsg":"ok"}`,
		"empty phone_info":    `{"errcode":0,"errmsg":"ok","phone_info":{}}`,
		"watermark elsewhere": `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"1","purePhoneNumber":"1","countryCode":"86","watermark":{"appid":"wxother"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t)
			f.handle(pathPhoneNumber, f.withToken(func(w http.ResponseWriter, r *http.Request) { writeBody(w, "text/plain", body) }))
			_, err := f.client(t, nil).GetPhoneNumber(context.Background(), "c")
			assert.ErrorIs(t, err, ErrBadResponse)
		})
	}
}

func TestSessionSignaturePublishedVector(t *testing.T) {
	assert.Equal(t, "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b",
		wxcrypto.SessionSignature("o0q0otL8aEzpcZL/FT9WsQ==", []byte(`{"foo":"bar"}`)))
}

func TestCheckSessionKey(t *testing.T) {
	f := newFake(t)
	c := f.client(t, nil)
	require.NoError(t, c.CheckSessionKey(context.Background(), testOpenID, testSessionKey))
	q, _ := url.ParseQuery(f.lastQuery(pathCheckSession))
	assert.Equal(t, testOpenID, q.Get("openid"))
	assert.Equal(t, "hmac_sha256", q.Get("sig_method"))
	// HMAC-SHA256 keyed with the session key's own ASCII bytes, over "" for GET, lowercase hex.
	mac := hmac.New(sha256.New, []byte("o0q0otL8aEzpcZL/FT9WsQ=="))
	assert.Equal(t, hex.EncodeToString(mac.Sum(nil)), q.Get("signature"))
	assert.Regexp(t, `^[0-9a-f]{64}$`, q.Get("signature"))
	assert.Empty(t, q.Get("session_key"), "the session key itself is never sent")

	err := c.CheckSessionKey(context.Background(), testOpenID, "bm90LXRoZS1jdXJyZW50LWtleQ==")
	var we *Error
	require.ErrorAs(t, err, &we)
	assert.Equal(t, 87009, we.Code)
	assert.Equal(t, KindSessionKey, we.Kind())
}

func TestResetUserSessionKey(t *testing.T) {
	f := newFake(t)
	s, err := f.client(t, nil).ResetUserSessionKey(context.Background(), testOpenID, testSessionKey)
	require.NoError(t, err)
	assert.Equal(t, testOpenID, s.OpenID)
	assert.Equal(t, "bmV3LWtleS8rPQ//==", s.SessionKey.Reveal())
	q, _ := url.ParseQuery(f.lastQuery(pathResetSessionKey))
	assert.Equal(t, wxcrypto.SessionSignature(testSessionKey, nil), q.Get("signature"))
	assert.Equal(t, "hmac_sha256", q.Get("sig_method"))

	f.handle(pathResetSessionKey, f.withToken(func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "text/plain", `{"errcode":0,"errmsg":"ok","openid":"`+testOpenID+`"}`)
	}))
	_, err = f.client(t, nil).ResetUserSessionKey(context.Background(), testOpenID, testSessionKey)
	assert.ErrorIs(t, err, ErrBadResponse)
}

func TestSessionKeyNeverPrints(t *testing.T) {
	s := Session{OpenID: "oA", UnionID: "uB", SessionKey: testSessionKey}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		out := fmt.Sprintf(format, s) + fmt.Sprintf(format, s.SessionKey) + fmt.Sprintf(format, &s)
		assert.NotContains(t, out, testSessionKey, format)
		assert.NotContains(t, out, fmt.Sprintf("%x", testSessionKey), format)
	}
	assert.Contains(t, fmt.Sprintf("%+v", s), "oA", "the ids still print")
	b, err := json.Marshal(s)
	require.NoError(t, err)
	assert.NotContains(t, string(b), testSessionKey)

	logger, logs := observed()
	logger.Info("login", zap.Object("session", s), zap.Any("any", s), zap.Any("key", s.SessionKey),
		zap.Stringer("stringer", s.SessionKey), zap.Reflect("reflect", s))
	for _, e := range logs.All() {
		assert.NotContains(t, fmt.Sprint(e.ContextMap()), testSessionKey)
	}
	assert.Equal(t, testSessionKey, string(s.SessionKey), "a plain conversion reveals it")
}

// Every way a call can end, with WeChat echoing secrets back for good
// measure: neither errors nor logs may hold the AppSecret, a session key or
// an access token.
func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	logger, logs := observed()
	f := newFake(t)
	var issued []string
	f.handle(pathToken, func(w http.ResponseWriter, r *http.Request) {
		tok, _ := f.issue()
		f.mu.Lock()
		issued = append(issued, tok)
		f.mu.Unlock()
		writeBody(w, "text/plain", fmt.Sprintf(`{"access_token":"%s","expires_in":7200}`, tok))
	})
	ctx := context.Background()
	c := f.client(t, func(c *config.WeChat) { c.StableToken = false; c.Timeout = 200 * time.Millisecond }, WithLogger(logger))
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	// Success, to have a token and a session key in play.
	_, err := c.Code2Session(ctx, "c")
	keep(err)
	_, err = c.GetPhoneNumber(ctx, "c")
	keep(err)
	keep(c.CheckSessionKey(ctx, testOpenID, testSessionKey))

	// Errmsgs that echo what they should not.
	f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "text/plain", errcodeBody(40125, "invalid appsecret "+testSecret+", rid: 1-2-3"))
	})
	_, err = c.Code2Session(ctx, "c")
	keep(err)
	f.handle(pathCheckSession, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "text/plain", errcodeBody(87009, "invalid signature for "+testSessionKey+" with "+r.URL.Query().Get("access_token")))
	})
	keep(c.CheckSessionKey(ctx, testOpenID, testSessionKey))
	f.handle(pathPhoneNumber, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "text/plain", errcodeBody(40001, "invalid credential "+r.URL.Query().Get("access_token")))
	})
	_, err = c.GetPhoneNumber(ctx, "c")
	keep(err)

	// Timeouts and refused connections: net/http's errors carry the URL.
	block := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	f.handle(pathPhoneNumber, block)
	_, err = c.GetPhoneNumber(ctx, "c")
	keep(err)
	f.handle(pathResetSessionKey, block)
	_, err = c.ResetUserSessionKey(ctx, testOpenID, testSessionKey)
	keep(err)
	f.handle(pathToken, block)
	c2 := f.client(t, func(c *config.WeChat) { c.StableToken = false; c.Timeout = 200 * time.Millisecond }, WithLogger(logger))
	_, err = c2.GetPhoneNumber(ctx, "c")
	keep(err)
	f.srv.Close()
	_, err = c.Code2Session(ctx, "c")
	keep(err)
	_, err = c2.AccessToken(ctx)
	keep(err)

	require.GreaterOrEqual(t, len(errs), 8)
	f.mu.Lock()
	secrets := append([]string{testSecret, url.QueryEscape(testSessionKey), testSessionKey}, issued...)
	f.mu.Unlock()
	require.NotEmpty(t, issued)
	var texts []string
	for _, err := range errs {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}
	for _, e := range logs.All() {
		texts = append(texts, e.Message+" "+fmt.Sprint(e.ContextMap()))
	}
	for _, text := range texts {
		for _, s := range secrets {
			assert.NotContains(t, text, s)
		}
		assert.NotContains(t, text, "secret=")
		assert.NotContains(t, text, "access_token=")
	}
}

func TestOneLogLinePerCall(t *testing.T) {
	logger, logs := observed()
	f := newFake(t)
	f.handle(pathCode2Session, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, "text/plain", errcodeBody(40029, "invalid code, rid: 6523a1b2-0f1e2d3c-4b5a6978"))
	})
	_, _ = f.client(t, nil, WithLogger(logger)).Code2Session(context.Background(), "c")
	lines := logs.FilterMessage("wechat call").All()
	require.Len(t, lines, 1)
	fields := lines[0].ContextMap()
	assert.Equal(t, pathCode2Session, fields["path"])
	assert.EqualValues(t, 40029, fields["errcode"])
	assert.Equal(t, "6523a1b2-0f1e2d3c-4b5a6978", fields["rid"])
	assert.Contains(t, fields, "duration")
	assert.Equal(t, "wechat", lines[0].LoggerName)
}

// insecureTLS is what NewClient must refuse.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec // refused by NewClient

func keys(q url.Values) []string {
	var out []string
	for k := range q {
		out = append(out, k)
	}
	return out
}
