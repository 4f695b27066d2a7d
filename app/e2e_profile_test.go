package main

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// deviceData is what the emulator's device side hands over.
func (s *service) deviceData(path string, body map[string]any) map[string]string {
	s.t.Helper()
	r := s.call("POST", s.emu+path, "", body)
	require.Equal(s.t, 200, r.Status, "%s", r.Raw)
	out := map[string]string{}
	for k, v := range r.Body {
		if str, ok := v.(string); ok {
			out[k] = str
		}
	}
	return out
}

func TestProfileEndToEnd(t *testing.T) {
	s := boot(t, nil)
	d, r := s.login("profile-user")
	access := r.Str("access_token")
	s.remember(access, d.SessionKey)

	t.Run("user info is decrypted, checked and stored", func(t *testing.T) {
		info := s.deviceData("/emulator/userinfo", map[string]any{"openid": d.OpenID, "nickname": "小红", "avatar_url": "https://thirdwx.qlogo.cn/mmopen/real/132"})
		got := s.call("POST", s.api+"/api/v1/me/userinfo", access, map[string]string{
			"encrypted_data": info["encrypted_data"], "iv": info["iv"], "raw_data": info["raw_data"], "signature": info["signature"],
		})
		require.Equal(t, 200, got.Status, "%s", got.Raw)
		require.Equal(t, "小红", got.Body["nickname"])
		require.Equal(t, "https://thirdwx.qlogo.cn/mmopen/real/132", got.Body["avatar_url"])

		bad := s.call("POST", s.api+"/api/v1/me/userinfo", access, map[string]string{
			"encrypted_data": info["encrypted_data"], "iv": info["iv"], "raw_data": info["raw_data"], "signature": strings.Repeat("0", 40),
		})
		require.Equal(t, 409, bad.Status, "a signature that does not match the stored key")
	})

	t.Run("the anonymous placeholder profile is ignored", func(t *testing.T) {
		info := s.deviceData("/emulator/userinfo", map[string]any{"openid": d.OpenID, "nickname": "微信用户",
			"avatar_url": "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"})
		got := s.call("POST", s.api+"/api/v1/me/userinfo", access, map[string]string{"encrypted_data": info["encrypted_data"], "iv": info["iv"]})
		require.Equal(t, 200, got.Status, "%s", got.Raw)
		require.Equal(t, "小红", got.Body["nickname"], "the real nickname stays")
		require.Equal(t, "https://thirdwx.qlogo.cn/mmopen/real/132", got.Body["avatar_url"])
	})

	t.Run("a foreign watermark is refused", func(t *testing.T) {
		info := s.deviceData("/emulator/userinfo", map[string]any{"openid": d.OpenID, "nickname": "Mallory", "watermark_appid": "wxsomeoneelse000"})
		got := s.call("POST", s.api+"/api/v1/me/userinfo", access, map[string]string{"encrypted_data": info["encrypted_data"], "iv": info["iv"]})
		require.Equal(t, 403, got.Status)
		require.Equal(t, "watermark_mismatch", got.ErrorCode())
		me := s.call("GET", s.api+"/api/v1/me", access, nil)
		require.Equal(t, "小红", me.Body["nickname"], "nothing written")
	})

	t.Run("phone by code", func(t *testing.T) {
		ph := s.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13800000001"})
		got := s.call("POST", s.api+"/api/v1/me/phone", access, map[string]string{"code": ph["code"]})
		require.Equal(t, 200, got.Status, "%s", got.Raw)
		require.Equal(t, "13800000001", got.Body["phone"])
		require.Equal(t, "86", got.Body["phone_country_code"])
		again := s.call("POST", s.api+"/api/v1/me/phone", access, map[string]string{"code": ph["code"]})
		require.Equal(t, 401, again.Status, "phone codes are single use")
		require.Equal(t, "invalid_code", again.ErrorCode())
	})

	t.Run("phone by legacy encrypted data", func(t *testing.T) {
		ph := s.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13800000002"})
		got := s.call("POST", s.api+"/api/v1/me/phone", access, map[string]string{"encrypted_data": ph["encrypted_data"], "iv": ph["iv"]})
		require.Equal(t, 200, got.Status, "%s", got.Raw)
		require.Equal(t, "13800000002", got.Body["phone"])
	})

	t.Run("a stale session key is a 409 telling the client to log in again", func(t *testing.T) {
		// The device calls wx.login again (a new session_key at WeChat) but
		// does not log in with it, then produces the data under the new key:
		// our stored key is older than the data's.
		s.wxLogin(d.OpenID)
		ph := s.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13800000003"})
		got := s.call("POST", s.api+"/api/v1/me/phone", access, map[string]string{"encrypted_data": ph["encrypted_data"], "iv": ph["iv"]})
		require.Equal(t, 409, got.Status, "%s", got.Raw)
		require.Equal(t, "session_key_stale", got.ErrorCode())
		require.Contains(t, got.Body["error"].(map[string]any)["message"], "wx.login")
		me := s.call("GET", s.api+"/api/v1/me", access, nil)
		require.Equal(t, "13800000002", me.Body["phone"], "nothing written")
	})

	t.Run("malformed input is a 4xx, never a 500", func(t *testing.T) {
		valid := s.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13800000004"})
		cases := []any{
			map[string]any{},
			map[string]any{"encrypted_data": "", "iv": ""},
			map[string]any{"encrypted_data": valid["encrypted_data"]},
			map[string]any{"encrypted_data": 12, "iv": true},
			map[string]any{"encrypted_data": "%%%", "iv": "%%%"},
			map[string]any{"encrypted_data": strings.ReplaceAll(valid["encrypted_data"], "+", " "), "iv": valid["iv"]},
			map[string]any{"encrypted_data": base64.StdEncoding.EncodeToString([]byte("short")), "iv": valid["iv"]},
			map[string]any{"encrypted_data": valid["encrypted_data"], "iv": base64.StdEncoding.EncodeToString([]byte("short"))},
			map[string]any{"code": "abc", "encrypted_data": valid["encrypted_data"], "iv": valid["iv"]},
			"[]", "null", "", `{"code":`,
		}
		for _, body := range cases {
			for _, path := range []string{"/api/v1/me/phone", "/api/v1/me/userinfo"} {
				got := s.call("POST", s.api+path, access, body)
				require.True(t, got.Status >= 400 && got.Status < 500, "%s %v → %d %s", path, body, got.Status, got.Raw)
			}
		}
	})
}

// TestPhoneRequestsShareOneAccessToken: 200 concurrent phone-number calls
// cost at most one access-token fetch.
func TestPhoneRequestsShareOneAccessToken(t *testing.T) {
	s := boot(t, nil)
	const n = 200
	type job struct{ access, code string }
	jobs := make([]job, n)
	for i := range jobs {
		d, r := s.login("")
		ph := s.deviceData("/emulator/phone", map[string]any{"openid": d.OpenID, "phone": "13900000000"})
		jobs[i] = job{r.Str("access_token"), ph["code"]}
	}
	tokenCalls := func() int { return s.emulatorCalls("/cgi-bin/token") + s.emulatorCalls("/cgi-bin/stable_token") }
	before := tokenCalls()
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = s.call("POST", s.api+"/api/v1/me/phone", jobs[i].access, map[string]string{"code": jobs[i].code}).Status
		}()
	}
	wg.Wait()
	for _, st := range statuses {
		require.Equal(t, 200, st)
	}
	require.LessOrEqual(t, tokenCalls()-before, 1)
	require.Equal(t, n, s.emulatorCalls("/wxa/business/getuserphonenumber"))
}

func pngImage(t *testing.T, size int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for x := range size {
		for y := range size {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

func TestAvatarUpload(t *testing.T) {
	// Many uploads in a row: the per-user limit is TestAvatarLimits'.
	s := boot(t, map[string]string{"APP_AVATAR_MAX_BYTES": "65536", "APP_RATELIMIT_AVATAR_UPLOADS": "off"})
	_, r := s.login("avatar-user")
	access := r.Str("access_token")

	first := pngImage(t, 40)
	up := s.upload(s.api+"/api/v1/me/avatar", access, "file", first)
	require.Equal(t, 200, up.Status, "%s", up.Raw)
	url1, _ := up.Body["avatar_url"].(string)
	require.True(t, strings.HasPrefix(url1, s.api+"/avatars/"), url1)
	require.True(t, strings.HasSuffix(url1, ".png"))

	resp, err := http.Get(url1)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	require.Equal(t, first, got, "bytes round-trip exactly")

	second := pngImage(t, 30)
	up2 := s.upload(s.api+"/api/v1/me/avatar", access, "file", second)
	require.Equal(t, 200, up2.Status)
	url2, _ := up2.Body["avatar_url"].(string)
	require.NotEqual(t, url1, url2, "random names")
	resp, err = http.Get(url1)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode, "the old avatar is removed")
	files, err := os.ReadDir(s.cfg.Avatar.Dir)
	require.NoError(t, err)
	require.Len(t, files, 1)
	require.Equal(t, filepath.Base(url2), files[0].Name())

	notImage := s.upload(s.api+"/api/v1/me/avatar", access, "file", []byte("<html><script>alert(1)</script></html>"))
	require.Equal(t, 415, notImage.Status)
	require.Equal(t, "unsupported_media_type", notImage.ErrorCode())
	gif := s.upload(s.api+"/api/v1/me/avatar", access, "file", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	require.Equal(t, 415, gif.Status)

	big := append(pngImage(t, 8), bytes.Repeat([]byte{0}, 70000)...)
	tooBig := s.upload(s.api+"/api/v1/me/avatar", access, "file", big)
	require.Equal(t, 413, tooBig.Status)

	wrongField := s.upload(s.api+"/api/v1/me/avatar", access, "image", first)
	require.Equal(t, 400, wrongField.Status)
	require.Equal(t, "missing_file", wrongField.ErrorCode())

	anon := s.upload(s.api+"/api/v1/me/avatar", "", "file", first)
	require.Equal(t, 401, anon.Status)

	files, _ = os.ReadDir(s.cfg.Avatar.Dir)
	require.Len(t, files, 1, "refused uploads leave no file")
	me := s.call("GET", s.api+"/api/v1/me", access, nil)
	require.Equal(t, url2, me.Body["avatar_url"])

	// Pointing the avatar elsewhere by any route removes the stored file.
	patched := s.call("PATCH", s.api+"/api/v1/me", access, map[string]string{"avatar_url": "https://thirdwx.qlogo.cn/mmopen/x/132"})
	require.Equal(t, 200, patched.Status)
	files, _ = os.ReadDir(s.cfg.Avatar.Dir)
	require.Empty(t, files, "no orphaned file")
	resp, err = http.Get(url2)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode)
}
