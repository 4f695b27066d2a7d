package qq_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/wxlogin/wxlogin/modules/platformtoken"
	"github.com/wxlogin/wxlogin/modules/provider"
	"github.com/wxlogin/wxlogin/modules/qq"
	"github.com/wxlogin/wxlogin/modules/qq/qqemu"
)

func TestLoginGivesTheIdentity(t *testing.T) {
	e := newEnv(t)
	dev := e.login(t, qqemu.LoginRequest{OpenID: "QQUSER1", UnionID: "UNION1"})
	p := qq.NewProvider(e.client(t, nil))
	id, err := p.Login(context.Background(), e.app(), provider.Credentials{Code: dev.Code})
	require.NoError(t, err)
	assert.Equal(t, provider.Identity{
		Provider: "qq", Kind: "miniprogram", AppID: appID, OpenID: "QQUSER1", UnionID: "UNION1",
		SessionKey: provider.Secret(dev.SessionKey),
	}, id)
	assert.Equal(t, "qq", p.Platform())

	// A user without unionid; a generated openid.
	dev = e.login(t, qqemu.LoginRequest{})
	id, err = p.Login(context.Background(), e.app(), provider.Credentials{Code: dev.Code})
	require.NoError(t, err)
	assert.Equal(t, dev.OpenID, id.OpenID)
	assert.Len(t, id.OpenID, 32)
	assert.Empty(t, id.UnionID)
}

func TestUnionIDIsSharedByTheAccountsApps(t *testing.T) {
	e := newEnv(t)
	c, err := qq.NewClient(config.Apps{
		e.app(),
		{Platform: "qq", AppID: otherApp, Secret: otherPass, BaseURL: e.srv.URL + "/qq"},
	})
	require.NoError(t, err)
	a := e.login(t, qqemu.LoginRequest{AppID: appID, OpenID: "OPENID-IN-A", UnionID: "U1"})
	b := e.login(t, qqemu.LoginRequest{AppID: otherApp, OpenID: "OPENID-IN-B", UnionID: "U1"})
	sa, err := c.Code2Session(context.Background(), appID, a.Code)
	require.NoError(t, err)
	sb, err := c.Code2Session(context.Background(), otherApp, b.Code)
	require.NoError(t, err)
	assert.NotEqual(t, sa.OpenID, sb.OpenID)
	assert.Equal(t, sa.UnionID, sb.UnionID)
}

func classify(t *testing.T, err error) provider.Kind {
	t.Helper()
	require.Error(t, err)
	platform, kind, ok := provider.Classify(err)
	require.True(t, ok, "every error is classified: %v", err)
	assert.Equal(t, "qq", platform)
	return kind
}

func TestCodeErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(t, nil)

	t.Run("unknown code", func(t *testing.T) {
		_, err := c.Code2Session(ctx, appID, "no-such-code")
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
		var qe *qq.Error
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, 40029, qe.Code)
		assert.Equal(t, qq.PathCode2Session, qe.Path)
	})
	t.Run("used code", func(t *testing.T) {
		dev := e.login(t, qqemu.LoginRequest{})
		_, err := c.Code2Session(ctx, appID, dev.Code)
		require.NoError(t, err)
		_, err = c.Code2Session(ctx, appID, dev.Code)
		assert.Equal(t, provider.KindInvalidCode, classify(t, err), "single use [D]; errcode 40029 [U]")
	})
	t.Run("expired code", func(t *testing.T) {
		dev := e.login(t, qqemu.LoginRequest{})
		e.clk.Advance(qqemu.CodeTTL) // [U] QQ's lifetime; WeChat's 5 minutes
		_, err := c.Code2Session(ctx, appID, dev.Code)
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
	})
	t.Run("code of another app", func(t *testing.T) {
		dev := e.login(t, qqemu.LoginRequest{AppID: otherApp})
		_, err := c.Code2Session(ctx, appID, dev.Code)
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
	})
	t.Run("empty code is answered locally", func(t *testing.T) {
		before := e.emu.Calls()[qqemu.PathCode2Session]
		_, err := c.Code2Session(ctx, appID, "")
		assert.Equal(t, provider.KindInvalidCode, classify(t, err))
		assert.Equal(t, before, e.emu.Calls()[qqemu.PathCode2Session], "nothing sent to QQ")
	})
}

func TestCredentialErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for name, edit := range map[string]func(*config.App){
		"unknown appid": func(a *config.App) { a.AppID = "1100000000" },
		"wrong secret":  func(a *config.App) { a.Secret = "wrong-secret" },
	} {
		t.Run(name, func(t *testing.T) {
			c := e.client(t, edit)
			a := e.app()
			edit(&a)
			dev := e.login(t, qqemu.LoginRequest{})
			_, err := c.Code2Session(ctx, a.AppID, dev.Code)
			assert.Equal(t, provider.KindMisconfigured, classify(t, err))
			_, err = c.AccessToken(ctx, a.AppID)
			assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		})
	}
	t.Run("wrong secret on getToken is 40001", func(t *testing.T) {
		c := e.client(t, func(a *config.App) { a.Secret = "wrong-secret" })
		_, err := c.AccessToken(ctx, appID)
		var qe *qq.Error
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, 40001, qe.Code)
	})
	t.Run("an app the client does not serve", func(t *testing.T) {
		c := e.client(t, nil)
		_, err := c.Code2Session(ctx, "1107777777", "code")
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
		_, err = qq.NewProvider(c).Login(ctx, config.App{Platform: "douyin", AppID: appID}, provider.Credentials{Code: "c"})
		assert.Equal(t, provider.KindMisconfigured, classify(t, err))
	})
}

func TestRateLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(t, nil)
	for i := range qqemu.MinuteQuota {
		dev := e.login(t, qqemu.LoginRequest{OpenID: "BUSYUSER"})
		_, err := c.Code2Session(ctx, appID, dev.Code)
		require.NoError(t, err, "call %d", i)
	}
	dev := e.login(t, qqemu.LoginRequest{OpenID: "BUSYUSER"})
	_, err := c.Code2Session(ctx, appID, dev.Code)
	assert.Equal(t, provider.KindRateLimited, classify(t, err))
	e.clk.Advance(time.Minute)
	_, err = c.Code2Session(ctx, appID, dev.Code)
	require.NoError(t, err, "the next minute the same code works: it was not spent")
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		fault qqemu.Fault
		kind  provider.Kind
	}{
		{"busy", qqemu.Fault{ErrCode: -1}, provider.KindUnavailable},
		{"rate limit errcode", qqemu.Fault{ErrCode: 45011}, provider.KindRateLimited},
		{"unknown errcode", qqemu.Fault{ErrCode: 99999}, provider.KindUnknown},
		{"HTTP 502", qqemu.Fault{HTTPStatus: 502}, provider.KindUnavailable},
		{"HTTP 500", qqemu.Fault{HTTPStatus: 500}, provider.KindUnavailable},
		{"HTTP 429", qqemu.Fault{HTTPStatus: 429}, provider.KindRateLimited},
		{"HTML page", qqemu.Fault{Body: "<html><body>502 Bad Gateway</body></html>"}, provider.KindUnavailable},
		{"whitespace", qqemu.Fault{Body: " \r\n"}, provider.KindUnavailable},
		{"truncated JSON", qqemu.Fault{Body: `{"openid":"oA","sess`}, provider.KindUnavailable},
		{"JSON array", qqemu.Fault{Body: `[1,2]`}, provider.KindUnavailable},
		{"errcode of the wrong type", qqemu.Fault{Body: `{"errcode":{"x":1}}`}, provider.KindUnavailable},
		{"success without session_key", qqemu.Fault{Body: `{"openid":"oA"}`}, provider.KindUnavailable},
		{"success without openid", qqemu.Fault{Body: `{"session_key":"k"}`}, provider.KindUnavailable},
		{"errcode 0 and nothing else", qqemu.Fault{Body: `{"errcode":0,"errmsg":"ok"}`}, provider.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t, nil)
			f := tc.fault
			f.Path, f.Count = qqemu.PathCode2Session, 1
			require.NoError(t, e.emu.AddFault(f))
			dev := e.login(t, qqemu.LoginRequest{})
			s, err := c.Code2Session(ctx, appID, dev.Code)
			assert.Equal(t, tc.kind, classify(t, err), "%v", err)
			assert.Equal(t, qq.Session{}, s)
			assert.Less(t, len(err.Error()), 400, "the body is not copied into the error")
			// The fault is spent and the code was not: the next call works.
			_, err = c.Code2Session(ctx, appID, dev.Code)
			require.NoError(t, err)
		})
	}
}

func TestErrcodeAsString(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.emu.AddFault(qqemu.Fault{Path: qqemu.PathCode2Session, Body: `{"errcode":"40029","errmsg":"invalid code"}`, Count: 1}))
	_, err := e.client(t, nil).Code2Session(context.Background(), appID, "c")
	assert.Equal(t, provider.KindInvalidCode, classify(t, err))
}

func TestTimeoutAndConnectionFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("timeout", func(t *testing.T) {
		e := newEnv(t)
		c := e.client(t, nil, qq.WithTimeout(100*time.Millisecond))
		require.NoError(t, e.emu.AddFault(qqemu.Fault{Path: qqemu.PathCode2Session, DelayMS: 2000, Count: 1}))
		_, err := c.Code2Session(ctx, appID, "c")
		assert.Equal(t, provider.KindUnavailable, classify(t, err))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var te *qq.TransportError
		require.ErrorAs(t, err, &te)
		assert.NotContains(t, err.Error(), "http://", "no URL in the error")
	})
	t.Run("connection refused", func(t *testing.T) {
		e := newEnv(t)
		c := e.client(t, nil)
		e.srv.Close()
		_, err := c.Code2Session(ctx, appID, "c")
		assert.Equal(t, provider.KindUnavailable, classify(t, err))
		assert.NotContains(t, err.Error(), secret)
		assert.NotContains(t, err.Error(), "js_code")
	})
	t.Run("caller's context", func(t *testing.T) {
		e := newEnv(t)
		c := e.client(t, nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := c.Code2Session(cctx, appID, "c")
		assert.Equal(t, provider.KindUnavailable, classify(t, err))
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// A server that is not QQ: redirects, huge bodies.
func TestRedirectsAreNotFollowedAndBodiesAreCapped(t *testing.T) {
	ctx := context.Background()
	var followed bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/elsewhere":
			followed = true
			_, _ = io.WriteString(w, `{"openid":"o","session_key":"k"}`)
		case "/redirect" + qq.PathCode2Session:
			http.Redirect(w, r, "/elsewhere?"+r.URL.RawQuery, http.StatusFound)
		default:
			_, _ = io.WriteString(w, `{"openid":"`+strings.Repeat("x", qq.MaxResponseBytes)+`","session_key":"k"}`)
		}
	}))
	defer srv.Close()
	for _, base := range []string{srv.URL + "/redirect", srv.URL} {
		c, err := qq.NewClient(config.Apps{{Platform: "qq", AppID: appID, Secret: secret, BaseURL: base}})
		require.NoError(t, err)
		_, err = c.Code2Session(ctx, appID, "c")
		assert.Equal(t, provider.KindUnavailable, classify(t, err))
		var re *qq.ResponseError
		require.ErrorAs(t, err, &re)
	}
	assert.False(t, followed, "the secret never travels to a redirect target")
}

func TestClientRefusesBadSetups(t *testing.T) {
	_, err := qq.NewClient(config.Apps{{Platform: "qq", AppID: appID}})
	assert.ErrorContains(t, err, "secret")
	_, err = qq.NewClient(config.Apps{{Platform: "qq", AppID: appID, Secret: secret, BaseURL: "ftp://x"}})
	assert.ErrorContains(t, err, "base URL")
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	_, err = qq.NewClient(nil, qq.WithHTTPClient(insecure))
	assert.ErrorContains(t, err, "TLS")
	c, err := qq.NewClient(config.Apps{{Platform: "wechat", AppID: "wx", Secret: "s"}})
	require.NoError(t, err, "apps of other platforms are ignored")
	assert.Nil(t, c.Tokens("wx"))
}

func TestAccessToken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	store := platformtoken.NewMemoryStore()
	a := e.client(t, nil, qq.WithTokenStore(store), qq.WithClock(e.clk.Now))
	b := e.client(t, nil, qq.WithTokenStore(store), qq.WithClock(e.clk.Now))

	var wg sync.WaitGroup
	tokens := make(chan string, 100)
	for _, c := range []*qq.HTTPClient{a, b} {
		for range 50 {
			wg.Go(func() {
				tok, err := c.AccessToken(ctx, appID)
				assert.NoError(t, err)
				tokens <- tok
			})
		}
	}
	wg.Wait()
	close(tokens)
	seen := map[string]bool{}
	for tok := range tokens {
		seen[tok] = true
	}
	require.Len(t, seen, 1, "one token for two instances sharing a store")
	assert.Equal(t, 1, e.emu.Calls()[qqemu.PathToken], "one fetch")
	var tok string
	for tok = range seen {
	}
	assert.True(t, e.emu.TokenValid(appID, tok))

	// Five minutes before expiry the next one is fetched; the old one keeps
	// working for QQ's overlap.
	e.clk.Advance(qqemu.TokenTTL - platformtoken.RefreshMargin)
	next, err := a.AccessToken(ctx, appID)
	require.NoError(t, err)
	assert.NotEqual(t, tok, next)
	assert.Equal(t, 2, e.emu.Calls()[qqemu.PathToken])
	assert.True(t, e.emu.TokenValid(appID, tok), "QQ keeps a superseded token for 5 minutes [D]")
	e.clk.Advance(qqemu.TokenGrace)
	assert.False(t, e.emu.TokenValid(appID, tok))
	assert.True(t, e.emu.TokenValid(appID, next))
}

func TestAccessTokenFaults(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		fault qqemu.Fault
		kind  provider.Kind
	}{
		"busy":               {qqemu.Fault{ErrCode: -1}, provider.KindUnavailable},
		"no expires_in":      {qqemu.Fault{Body: `{"access_token":"T"}`}, provider.KindUnavailable},
		"no access_token":    {qqemu.Fault{Body: `{"expires_in":7200}`}, provider.KindUnavailable},
		"expires_in as text": {qqemu.Fault{Body: `{"access_token":"T","expires_in":"soon"}`}, provider.KindUnavailable},
		"HTTP 503":           {qqemu.Fault{HTTPStatus: 503}, provider.KindUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(t, nil)
			f := tc.fault
			f.Path, f.Count = qqemu.PathToken, 1
			require.NoError(t, e.emu.AddFault(f))
			_, err := c.AccessToken(ctx, appID)
			assert.Equal(t, tc.kind, classify(t, err))
			_, err = c.AccessToken(ctx, appID)
			require.NoError(t, err, "a failed fetch is not cached")
		})
	}
	t.Run("expires_in as a numeric string", func(t *testing.T) {
		e := newEnv(t)
		require.NoError(t, e.emu.AddFault(qqemu.Fault{Path: qqemu.PathToken, Body: `{"access_token":"T-string","expires_in":"7200"}`, Count: 1}))
		tok, err := e.client(t, nil).AccessToken(ctx, appID)
		require.NoError(t, err)
		assert.Equal(t, "T-string", tok)
	})
}

func TestPhoneIsUnsupported(t *testing.T) {
	e := newEnv(t)
	_, err := qq.NewProvider(e.client(t, nil)).Phone(context.Background(), e.app(), provider.PhoneRequest{Code: "c"})
	assert.Equal(t, provider.KindUnsupported, classify(t, err))
}

// Every way a call can end: neither errors nor logs may hold the AppSecret,
// a code, a session key or an access token.
func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var leaks []string
	var errs []error
	record := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	good := e.client(t, nil)
	dev := e.login(t, qqemu.LoginRequest{})
	leaks = append(leaks, dev.Code, dev.SessionKey)
	s, err := good.Code2Session(ctx, appID, dev.Code)
	require.NoError(t, err)
	_, err = good.Code2Session(ctx, appID, dev.Code)
	record(err)
	tok, err := good.AccessToken(ctx, appID)
	require.NoError(t, err)
	leaks = append(leaks, tok)
	bad := e.client(t, func(a *config.App) { a.Secret = "WRONG-SECRET-must-not-leak" })
	leaks = append(leaks, "WRONG-SECRET-must-not-leak", secret)
	_, err = bad.Code2Session(ctx, appID, "CODE-must-not-leak")
	record(err)
	_, err = bad.AccessToken(ctx, appID)
	record(err)
	// QQ echoing the secret back in errmsg.
	require.NoError(t, e.emu.AddFault(qqemu.Fault{Path: qqemu.PathCode2Session, Body: `{"errcode":40125,"errmsg":"bad secret ` + secret + `"}`, Count: 1}))
	_, err = good.Code2Session(ctx, appID, "CODE-must-not-leak")
	record(err)
	timeout := e.client(t, nil, qq.WithTimeout(50*time.Millisecond))
	require.NoError(t, e.emu.AddFault(qqemu.Fault{Path: qqemu.PathCode2Session, DelayMS: 1000, Count: 1}))
	_, err = timeout.Code2Session(ctx, appID, "CODE-must-not-leak")
	record(err)
	leaks = append(leaks, "CODE-must-not-leak")

	require.Len(t, errs, 5)
	var texts []string
	for _, err := range errs {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	}
	for _, entry := range e.logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		texts = append(texts, entry.Message, string(b))
	}
	texts = append(texts, fmt.Sprintf("%v %+v %#v", s, s, s))
	for _, text := range texts {
		for _, leak := range leaks {
			assert.NotContains(t, text, leak)
		}
	}
	require.NotEmpty(t, e.logs.FilterMessage("qq call").All(), "one line per call")
	require.NotEmpty(t, e.logs.FilterMessageSnippet("check this app's appid and secret").All(), "the operator is told what to check")
	for _, entry := range e.logs.All() {
		assert.NotContains(t, fmt.Sprint(entry.ContextMap()), "?", "no query string in logs")
	}
	assert.True(t, errors.Is(errs[len(errs)-1], context.DeadlineExceeded))
}
