package emulator_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/msgcrypt"
	"github.com/wxlogin/wxlogin/modules/emulator"
)

const (
	pushToken = "emulatorPushToken"
	pushKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

// received is what a push receiver saw.
type received struct {
	query       url.Values
	contentType string
	body        string
}

func receiver(t *testing.T) (string, func() received) {
	var mu sync.Mutex
	var last received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = received{query: r.URL.Query(), contentType: r.Header.Get("Content-Type"), body: string(b)}
		mu.Unlock()
		_, _ = io.WriteString(w, "success")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() received { mu.Lock(); defer mu.Unlock(); return last }
}

func TestPushIsSignedAndEncryptedLikeWeChat(t *testing.T) {
	apps := config.Apps{
		{Platform: "wechat", AppID: "wxSafe", Secret: "s", Kind: "miniprogram", PushToken: pushToken, PushAESKey: pushKey},
		{Platform: "wechat", AppID: "wxPlain", Secret: "s", Kind: "miniprogram", PushToken: pushToken},
		{Platform: "wechat", AppID: "wxNone", Secret: "s", Kind: "miniprogram"},
	}
	base, last := receiver(t)
	e := emulator.New(apps, emulator.WithPushURL(base))
	ctx := context.Background()
	key, err := msgcrypt.ParseKey(pushKey)
	require.NoError(t, err)

	for _, format := range []string{"json", "xml"} {
		// Safe mode by default when the app has an AES key.
		res, err := e.Push(ctx, emulator.PushRequest{AppID: "wxSafe", Event: "user_authorization_revoke", OpenID: "o-1", RevokeInfo: "6,8", Format: format})
		require.NoError(t, err)
		require.Equal(t, 200, res.Status)
		require.Equal(t, "success", res.Body)
		got := last()
		require.Equal(t, res.Request.Body, got.body, "the answer shows the request as sent")
		require.True(t, strings.HasPrefix(res.Request.URL, base+"/wechat/push/wxSafe?"))
		q := got.query
		require.Equal(t, "aes", q.Get("encrypt_type"))
		require.True(t, msgcrypt.Verify(q.Get("signature"), pushToken, q.Get("timestamp"), q.Get("nonce")))
		var enc string
		if format == "json" {
			require.Equal(t, "application/json", got.contentType)
			var outer map[string]string
			require.NoError(t, json.Unmarshal([]byte(got.body), &outer))
			require.Len(t, outer, 2, "safe mode sends ToUserName and Encrypt only")
			enc = outer["Encrypt"]
		} else {
			require.Equal(t, "text/xml", got.contentType)
			enc = between(got.body, "<Encrypt><![CDATA[", "]]></Encrypt>")
		}
		require.True(t, msgcrypt.Verify(q.Get("msg_signature"), pushToken, q.Get("timestamp"), q.Get("nonce"), enc))
		plain, err := key.Decrypt(enc, "wxSafe")
		require.NoError(t, err)
		for _, want := range []string{"user_authorization_revoke", "o-1", "6,8", "wxSafe", "event"} {
			require.Contains(t, string(plain), want)
		}
	}

	// Plain mode: the body as it is, signed by signature only.
	res, err := e.Push(ctx, emulator.PushRequest{AppID: "wxPlain", Event: "user_info_modified"})
	require.NoError(t, err)
	require.Equal(t, 200, res.Status)
	got := last()
	require.False(t, got.query.Has("msg_signature"))
	require.NotContains(t, got.body, "OpenID", "an event without OpenID")
	require.Contains(t, got.body, `"Event":"user_info_modified"`)

	// Compatible mode: both.
	_, err = e.Push(ctx, emulator.PushRequest{AppID: "wxSafe", Event: "user_info_modified", OpenID: "o-2", Mode: "compatible"})
	require.NoError(t, err)
	require.Contains(t, last().body, `"OpenID":"o-2"`)
	require.Contains(t, last().body, `"Encrypt":"`)

	// A wrong signature, on request.
	_, err = e.Push(ctx, emulator.PushRequest{AppID: "wxSafe", Event: "user_info_modified", OpenID: "o-2", BadSignature: true})
	require.NoError(t, err)
	require.False(t, msgcrypt.Verify(last().query.Get("msg_signature"), pushToken, last().query.Get("timestamp"), last().query.Get("nonce"), "x"))
	require.Equal(t, strings.Repeat("0", 40), last().query.Get("signature"))

	bad := map[string]emulator.PushRequest{
		"push_not_configured": {AppID: "wxNone", Event: "user_info_modified"},
		"invalid_event":       {AppID: "wxSafe", Event: "no spaces"},
		"invalid_openid":      {AppID: "wxSafe", Event: "e", OpenID: "o/1"},
		"invalid_revoke_info": {AppID: "wxSafe", Event: "e", RevokeInfo: "six"},
		"invalid_format":      {AppID: "wxSafe", Event: "e", Format: "yaml"},
		"invalid_mode":        {AppID: "wxSafe", Event: "e", Mode: "loud"},
		"invalid_url":         {AppID: "wxSafe", Event: "e", URL: "ftp://x"},
		"unknown_app":         {AppID: "wxNope", Event: "e"},
	}
	for code, req := range bad {
		_, err := e.Push(ctx, req)
		var ie *emulator.InputError
		require.ErrorAs(t, err, &ie, code)
		require.Equal(t, code, ie.Code)
	}
	_, err = e.Push(ctx, emulator.PushRequest{AppID: "wxPlain", Event: "e", Mode: "safe"})
	require.ErrorContains(t, err, "push_aes_key")
	_, err = e.Push(ctx, emulator.PushRequest{AppID: "wxPlain", Event: "e", URL: "http://127.0.0.1:1/x"})
	var ie *emulator.InputError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "push_failed", ie.Code)
	require.Equal(t, 502, ie.Status)

	// Without a push URL the emulator needs one in the request.
	_, err = emulator.New(apps).Push(ctx, emulator.PushRequest{AppID: "wxPlain", Event: "e"})
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "invalid_url", ie.Code)
}

func between(s, start, end string) string {
	_, after, _ := strings.Cut(s, start)
	v, _, _ := strings.Cut(after, end)
	return v
}
