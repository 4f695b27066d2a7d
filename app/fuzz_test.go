package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fuzzRoutes are the routes that parse client input. Logout is left out:
// with the valid token it would end the session the fuzzer reuses.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/auth/login"},
	{"POST", "/api/v1/auth/refresh"},
	{"GET", "/api/v1/me"},
	{"PATCH", "/api/v1/me"},
	{"POST", "/api/v1/me/phone"},
	{"POST", "/api/v1/me/userinfo"},
	{"POST", "/api/v1/me/avatar"},
	{"GET", "/api/v1/example/greeting"},
}

// FuzzAPI sends arbitrary bodies, content types and Authorization headers
// to every route that parses client input, on the real application. No
// input may get a 5xx, a non-JSON error or a panic. "VALID" in the header
// stands for a real access token, so the fuzzer also reaches the handlers
// behind the middleware.
func FuzzAPI(f *testing.F) {
	s := boot(f, nil)
	_, r := s.login("fuzz-user")
	valid := r.Str("access_token")
	client := &http.Client{Timeout: 10 * time.Second}

	seeds := []struct {
		route       uint8
		auth        string
		contentType string
		body        string
	}{
		{0, "", "application/json", `{"code":"0a1b2c"}`},
		{0, "", "application/x-www-form-urlencoded", `code=a+b`},
		{1, "", "application/json", `{"refresh_token":"abc.def"}`},
		{1, "", "application/json", `{"refresh_token":"` + strings.Repeat("a", 5000) + `"}`},
		{2, "Bearer VALID", "", ``},
		{2, "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "", ``},
		{3, "Bearer VALID", "application/json", `{"nickname":"\u0000","avatar_url":"javascript:x"}`},
		{3, "Bearer VALID", "application/json", `{"nickname":123}`},
		{4, "Bearer VALID", "application/json", `{"code":"x","encrypted_data":"AAAA","iv":"AAAA"}`},
		{4, "Bearer VALID", "application/json", `{"encrypted_data":"a b+c/d==","iv":"r7BXXKkLb8qrSNn05n0qiA=="}`},
		{5, "Bearer VALID", "application/json", `{"encrypted_data":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAAAAAAAAAAAAAAAAA==","raw_data":"{}","signature":"00"}`},
		{6, "Bearer VALID", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n\x89PNG\r\n\x1a\n\r\n--x--\r\n"},
		{6, "Bearer VALID", "multipart/form-data; boundary=", "--\r\n"},
		{7, "bearer   VALID", "", ``},
		{7, "Basic dXNlcjpwYXNz", "", ``},
	}
	for _, sd := range seeds {
		f.Add(sd.route, sd.auth, sd.contentType, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, auth, contentType string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req, err := http.NewRequest(rt.method, s.api+rt.path, bytes.NewReader(body))
		if err != nil {
			return
		}
		auth = strings.ReplaceAll(auth, "VALID", valid)
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		if contentType != "" {
			req.Header["Content-Type"] = []string{contentType}
		}
		resp, err := client.Do(req)
		if err != nil {
			return // net/http refused to send it (invalid header bytes)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s → %d %s", rt.method, rt.path, resp.StatusCode, raw)
		}
		if resp.StatusCode >= 400 {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s → %d with a body that is not our JSON error: %q", rt.method, rt.path, resp.StatusCode, raw)
			}
		}
	})
}
