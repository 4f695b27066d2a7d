package msgcrypt_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/msgcrypt"
)

// The official worked example of WeChat's message encryption (the
// WXBizMsgCrypt sample: EncodingAESKey, Token, appid, timestamp, nonce,
// msg_signature and the Encrypt of a text message). Its plaintext, read
// independently with openssl (aes-256-cbc, key = the decoded EncodingAESKey,
// IV = its first 16 bytes), starts with the random "89465c840c5f116f" and
// ends with the appid.
const (
	exampleKey       = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	exampleToken     = "spamtest"
	exampleAppID     = "wx2c2769f8efd9abc2"
	exampleTimestamp = "1409735669"
	exampleNonce     = "1320562132"
	exampleMsgSign   = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
	exampleEncrypt   = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
	exampleRandom    = "89465c840c5f116f"
	// exampleURLSign is sha1 of the sorted [Token, timestamp, nonce],
	// computed with coreutils: printf '%s\n' spamtest 1409735669 1320562132 | LC_ALL=C sort | tr -d '\n' | sha1sum
	exampleURLSign = "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
)

func exampleMessage() string {
	return "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n" +
		"<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n" +
		"<CreateTime>1409735668</CreateTime>\n" +
		"<MsgType><![CDATA[text]]></MsgType>\n" +
		"<Content><![CDATA[abcdteT]]></Content>\n" +
		"<MsgId>6054768590064713728</MsgId>\n" +
		"</xml>"
}

func TestOfficialExample(t *testing.T) {
	require.Equal(t, exampleMsgSign, msgcrypt.Signature(exampleToken, exampleTimestamp, exampleNonce, exampleEncrypt))
	require.True(t, msgcrypt.Verify(exampleMsgSign, exampleToken, exampleTimestamp, exampleNonce, exampleEncrypt))
	require.True(t, msgcrypt.Verify(strings.ToUpper(exampleMsgSign), exampleNonce, exampleEncrypt, exampleToken, exampleTimestamp), "order and hex case do not matter")
	require.False(t, msgcrypt.Verify(exampleMsgSign, exampleToken, exampleTimestamp, exampleNonce, exampleEncrypt+"x"))
	require.Equal(t, exampleURLSign, msgcrypt.Signature(exampleToken, exampleTimestamp, exampleNonce))

	k, err := msgcrypt.ParseKey(exampleKey)
	require.NoError(t, err)
	msg, err := k.Decrypt(exampleEncrypt, exampleAppID)
	require.NoError(t, err)
	require.Equal(t, exampleMessage(), string(msg))

	_, err = k.Decrypt(exampleEncrypt, "wxSomeoneElse")
	require.ErrorIs(t, err, msgcrypt.ErrReceiver, "a message for another app")

	var random [16]byte
	copy(random[:], exampleRandom)
	require.Equal(t, exampleEncrypt, k.EncryptWith(random, []byte(exampleMessage()), exampleAppID), "encryption reproduces the example")
}

func TestRoundTrip(t *testing.T) {
	k, err := msgcrypt.ParseKey(exampleKey)
	require.NoError(t, err)
	for _, n := range []int{0, 1, 11, 12, 13, 31, 32, 33, 1000} {
		msg := []byte(strings.Repeat("消", n))
		enc, err := k.Encrypt(msg, "wxApp")
		require.NoError(t, err)
		got, err := k.Decrypt(enc, "wxApp")
		require.NoError(t, err)
		require.Equal(t, msg, got)
		again, err := k.Encrypt(msg, "wxApp")
		require.NoError(t, err)
		require.NotEqual(t, enc, again, "a fresh random prefix every time")
	}
}

func TestMalformed(t *testing.T) {
	k, err := msgcrypt.ParseKey(exampleKey)
	require.NoError(t, err)
	other, err := msgcrypt.ParseKey(strings.Repeat("A", 43))
	require.NoError(t, err)
	raw, _ := base64.StdEncoding.DecodeString(exampleEncrypt)
	cases := map[string]string{
		"empty":            "",
		"not base64":       "!!!!",
		"one block":        base64.StdEncoding.EncodeToString(raw[:16]),
		"not whole blocks": base64.StdEncoding.EncodeToString(raw[:40]),
		"truncated":        base64.StdEncoding.EncodeToString(raw[:32]),
	}
	for name, enc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := k.Decrypt(enc, exampleAppID)
			require.ErrorIs(t, err, msgcrypt.ErrMalformed)
		})
	}
	_, err = other.Decrypt(exampleEncrypt, exampleAppID)
	require.Error(t, err, "another key")

	// A length field that says more than there is.
	var random [16]byte
	enc := k.EncryptWith(random, []byte("hi"), "")
	bad := forge(t, k, append(append(random[:], 0xff, 0xff, 0xff, 0xff), []byte("hi")...))
	_, err = k.Decrypt(bad, "")
	require.ErrorIs(t, err, msgcrypt.ErrMalformed)
	_, err = k.Decrypt(enc, "")
	require.NoError(t, err)

	for _, key := range []string{"", "short", strings.Repeat("!", 43), exampleKey + "A"} {
		_, err := msgcrypt.ParseKey(key)
		require.ErrorIs(t, err, msgcrypt.ErrKey)
	}
	require.NotContains(t, fmt.Sprintf("%v %#v %+v", k, k, k), "abcdef")
}

// forge encrypts plain (random | length | rest) under k with a length
// field of its choosing: EncryptWith always writes the true length, so the
// ciphertext is patched afterwards. In CBC, flipping bits of the first
// ciphertext block flips the same bits of the second plaintext block (bytes
// 16..31, where the length field starts) and garbles only the first, the
// random prefix.
func forge(t *testing.T, k *msgcrypt.Key, plain []byte) string {
	t.Helper()
	var random [16]byte
	copy(random[:], plain[:16])
	ct, _ := base64.StdEncoding.DecodeString(k.EncryptWith(random, plain[20:], ""))
	want, have := plain[16:20], []byte{0, 0, 0, byte(len(plain) - 20)}
	for i := range 4 {
		ct[i] ^= want[i] ^ have[i]
	}
	return base64.StdEncoding.EncodeToString(ct)
}

func FuzzDecrypt(f *testing.F) {
	k, err := msgcrypt.ParseKey(exampleKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(exampleEncrypt, exampleAppID)
	f.Add("", "")
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)), "wx")
	f.Fuzz(func(t *testing.T, enc, receiver string) {
		msg, err := k.Decrypt(enc, receiver)
		if err == nil {
			again, err := k.Decrypt(k.EncryptWith([16]byte{}, msg, receiver), receiver)
			if err != nil || string(again) != string(msg) {
				t.Fatalf("round trip of a decrypted message failed: %v", err)
			}
		}
	})
}
