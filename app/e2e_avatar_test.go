package main

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/testutil"
)

// avatarFiles lists the stored avatar files.
func (s *service) avatarFiles() []string {
	s.t.Helper()
	entries, err := os.ReadDir(s.cfg.Avatar.Dir)
	require.NoError(s.t, err)
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func (s *service) fetchStatus(url string) int {
	s.t.Helper()
	resp, err := http.Get(url)
	require.NoError(s.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAvatarBelongsToItsOwner: another user cannot point their avatar at a
// file stored here, in any spelling of its URL, so cannot have it deleted
// by replacing their avatar afterwards; the owner can.
func TestAvatarBelongsToItsOwner(t *testing.T) {
	s := boot(t, nil)
	_, victim := s.login("avatar-victim")
	_, attacker := s.login("avatar-attacker")
	up := s.upload(s.api+"/api/v1/me/avatar", victim.Str("access_token"), "file", pngImage(t, 20))
	require.Equal(t, 200, up.Status, "%s", up.Raw)
	victimURL := up.Body["avatar_url"].(string)
	name := filepath.Base(victimURL)
	host := strings.TrimPrefix(s.api, "http://")

	for _, u := range []string{
		victimURL,
		strings.Replace(victimURL, "http://", "HTTP://", 1),
		strings.Replace(victimURL, host, strings.ToUpper(host), 1),
		strings.Replace(victimURL, "/avatars/", "/avatars/../avatars/", 1),
		strings.Replace(victimURL, "/avatars/", "/%61vatars/", 1),
		strings.Replace(victimURL, "/avatars/", "//avatars/", 1),
		victimURL + "?x=1",
		victimURL + "#frag",
		strings.Replace(victimURL, "http://127.0.0.1", "http://localhost", 1) + "x",
		"http://" + strings.Split(host, ":")[0] + ":1/avatars/" + name,
	} {
		r := s.call("PATCH", s.api+"/api/v1/me", attacker.Str("access_token"), map[string]string{"avatar_url": u})
		if strings.Contains(u, "localhost") {
			continue // another host name: not ours to judge
		}
		require.Equal(t, 400, r.Status, "%s → %s", u, r.Raw)
		require.Equal(t, "invalid_avatar_url", r.ErrorCode(), u)
	}
	require.Equal(t, 200, s.call("PATCH", s.api+"/api/v1/me", attacker.Str("access_token"), map[string]string{"avatar_url": ""}).Status)
	require.Equal(t, 200, s.fetchStatus(victimURL), "the victim's file is still there")
	require.Equal(t, []string{name}, s.avatarFiles())

	// The owner may set it again, and replacing it removes it.
	require.Equal(t, 200, s.call("PATCH", s.api+"/api/v1/me", victim.Str("access_token"), map[string]string{"avatar_url": victimURL}).Status)
	r := s.call("PATCH", s.api+"/api/v1/me", victim.Str("access_token"), map[string]string{"avatar_url": "https://thirdwx.qlogo.cn/mmopen/x/132"})
	require.Equal(t, 200, r.Status)
	require.Equal(t, 404, s.fetchStatus(victimURL))
	require.Empty(t, s.avatarFiles())
	r = s.call("PATCH", s.api+"/api/v1/me", victim.Str("access_token"), map[string]string{"avatar_url": victimURL})
	require.Equal(t, 400, r.Status, "a file that is gone cannot come back")
}

// TestConcurrentAvatarUploads: many uploads at once by one user leave
// exactly one file, the one the user points at, on every database.
func TestConcurrentAvatarUploads(t *testing.T) {
	for _, backend := range testutil.Backends {
		t.Run(backend, func(t *testing.T) {
			db := testutil.DatabaseConfig(t, backend)
			s := boot(t, map[string]string{"APP_DATABASE_DRIVER": db.Driver, "APP_DATABASE_DSN": db.DSN,
				"APP_RATELIMIT_AVATAR_UPLOADS": "off"})
			_, r := s.login("concurrent-avatar")
			access := r.Str("access_token")
			img := pngImage(t, 64)
			var wg sync.WaitGroup
			var mu sync.Mutex
			statuses := map[int]int{}
			for range 60 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					status := s.uploadStatus(s.api+"/api/v1/me/avatar", access, img)
					mu.Lock()
					statuses[status]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			require.Equal(t, map[int]int{200: 60}, statuses)
			me := s.call("GET", s.api+"/api/v1/me", access, nil)
			current := me.Body["avatar_url"].(string)
			require.Equal(t, []string{filepath.Base(current)}, s.avatarFiles(), "one file is left: the current one")
			require.Equal(t, 200, s.fetchStatus(current))
		})
	}
}

// TestAvatarLimits: five uploads per user in ten minutes, then 429 with
// Retry-After; another user is not affected.
func TestAvatarLimits(t *testing.T) {
	s := boot(t, nil)
	_, a := s.login("avatar-limit-a")
	_, b := s.login("avatar-limit-b")
	img := pngImage(t, 8)
	for i := range 5 {
		require.Equal(t, 200, s.upload(s.api+"/api/v1/me/avatar", a.Str("access_token"), "file", img).Status, "upload %d", i)
	}
	r := s.upload(s.api+"/api/v1/me/avatar", a.Str("access_token"), "file", img)
	require.Equal(t, 429, r.Status)
	require.Equal(t, "rate_limited", r.ErrorCode())
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	require.Equal(t, 200, s.upload(s.api+"/api/v1/me/avatar", b.Str("access_token"), "file", img).Status)
	require.Len(t, s.avatarFiles(), 2, "one file per user")
}

// uploadStatus uploads data as the avatar and returns the status; it does
// not use require, so goroutines may call it.
func (s *service) uploadStatus(url, bearer string, data []byte) int {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile("file", "tmp_avatar.png")
	_, _ = fw.Write(data)
	_ = w.Close()
	req, _ := http.NewRequest("POST", url, &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAvatarFollowsAMerge: the absorbed user's uploaded avatar becomes the
// survivor's — kept, served, and removed when the survivor replaces it.
func TestAvatarFollowsAMerge(t *testing.T) {
	s := boot(t, brandVars(t, "jwt"))
	_, older := s.loginVia(miniA, "o-A", "u-merge")
	_, younger := s.loginVia(miniB, "o-B", "")
	up := s.upload(s.api+"/api/v1/me/avatar", younger.Str("access_token"), "file", pngImage(t, 12))
	require.Equal(t, 200, up.Status, "%s", up.Raw)
	url := up.Body["avatar_url"].(string)

	_, merged := s.loginVia(miniB, "o-B", "u-merge")
	require.Equal(t, userID(older), userID(merged))
	require.Equal(t, url, merged.User()["avatar_url"], "the survivor takes the absorbed user's avatar")
	require.Equal(t, 200, s.fetchStatus(url))
	require.Equal(t, []string{filepath.Base(url)}, s.avatarFiles())

	access := merged.Str("access_token")
	require.Equal(t, 200, s.call("PATCH", s.api+"/api/v1/me", access, map[string]string{"avatar_url": url}).Status, "it is the survivor's now")
	require.Equal(t, 200, s.call("PATCH", s.api+"/api/v1/me", access, map[string]string{"avatar_url": ""}).Status)
	require.Empty(t, s.avatarFiles(), "and replacing it removes it")
}
