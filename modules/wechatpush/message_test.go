package wechatpush_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/modules/user"
	"github.com/wxlogin/wxlogin/modules/wechatpush"
)

func TestParseMessage(t *testing.T) {
	want := wechatpush.Message{ToUserName: "gh_123456789abc", FromUserName: "oSender", CreateTime: 1686708923, MsgType: "event",
		Event: "user_authorization_revoke", OpenID: "o-user", AppID: "wxA", RevokeInfo: []int{6, 8}, RawRevokeInfo: "6,8"}
	cases := map[string]string{
		"json": `{"ToUserName":"gh_123456789abc","FromUserName":"oSender","CreateTime":1686708923,"MsgType":"event",
			"Event":"user_authorization_revoke","OpenID":"o-user","AppID":"wxA","RevokeInfo":"6,8"}`,
		// Some of WeChat's JSON samples put a space before the key; numbers may come as strings.
		"json with the doc's typos": `{" ToUserName":"gh_123456789abc","FromUserName":"oSender","CreateTime":"1686708923","MsgType":"event",
			"Event":"user_authorization_revoke"," OpenID":"o-user","appid":"wxA","RevokeInfo":"6,8","Extra":{"x":1}}`,
		// [U] RevokeInfo as a list (a string of codes or an array): WeChat's samples show one code.
		"json list": `{"ToUserName":"gh_123456789abc","FromUserName":"oSender","CreateTime":1686708923,"MsgType":"event",
			"Event":"user_authorization_revoke","OpenID":"o-user","AppID":"wxA","RevokeInfo":[6,"8"]}`,
		"xml": `<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[oSender]]></FromUserName>
			<CreateTime>1686708923</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[user_authorization_revoke]]></Event>
			<OpenID><![CDATA[o-user]]></OpenID><AppID><![CDATA[wxA]]></AppID><RevokeInfo><![CDATA[6,8]]></RevokeInfo>
			<Nested><Deeper>skipped</Deeper></Nested></xml>`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := wechatpush.ParseMessage([]byte(body))
			require.NoError(t, err)
			require.Equal(t, want, m)
		})
	}

	m, err := wechatpush.ParseMessage([]byte(`<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[abc+/=]]></Encrypt></xml>`))
	require.NoError(t, err)
	require.Equal(t, "abc+/=", m.Encrypt)
	m, err = wechatpush.ParseMessage([]byte(`{"MsgType":"event","Event":"user_info_modified","AppID":"wxA"}`))
	require.NoError(t, err)
	require.Empty(t, m.OpenID, "an event without OpenID parses; the handler ignores it")

	for _, bad := range []string{"", "   ", "success", "[1,2]", `{"CreateTime":"soon"}`, "<xml><a>", "<xml></b>", `{"a":`,
		strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20), "<" + strings.Repeat("x", wechatpush.MaxBody)} {
		_, err := wechatpush.ParseMessage([]byte(bad))
		require.ErrorIs(t, err, wechatpush.ErrBadMessage, "%.40q", bad)
	}
}

func TestRevokedFields(t *testing.T) {
	require.Equal(t, []user.Field{user.FieldNickname, user.FieldAvatar}, wechatpush.RevokedFields([]int{6}))
	require.Equal(t, []user.Field{user.FieldPhone}, wechatpush.RevokedFields([]int{8, 13}))
	require.Equal(t, []user.Field{user.FieldNickname}, wechatpush.RevokedFields([]int{19}))
	require.Equal(t, []user.Field{user.FieldAvatar, user.FieldNickname}, wechatpush.RevokedFields([]int{20, 19, 20}))
	require.Equal(t, []user.Field{user.FieldNickname, user.FieldAvatar, user.FieldPhone}, wechatpush.RevokedFields([]int{301}))
	require.Empty(t, wechatpush.RevokedFields([]int{1, 2, 13}), "an address or the location: nothing wxlogin keeps")
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"ToUserName":"gh_x","MsgType":"event","Event":"user_info_modified","OpenID":"o","AppID":"wx","CreateTime":1}`))
	f.Add([]byte(`<xml><MsgType><![CDATA[event]]></MsgType><RevokeInfo>6,8</RevokeInfo><Encrypt>abc</Encrypt></xml>`))
	f.Add([]byte(`{" OpenID":["a",1,{"b":2}],"RevokeInfo":[1,2,3]}`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><a>&a;</a></xml>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := wechatpush.ParseMessage(body)
		if err != nil {
			return
		}
		if len(m.RevokeInfo) > 64 {
			t.Fatalf("unbounded RevokeInfo: %d codes", len(m.RevokeInfo))
		}
		_ = wechatpush.RevokedFields(m.RevokeInfo)
	})
}
