package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxlogin/wxlogin/config"
	"github.com/wxlogin/wxlogin/internal/emukit"
	"github.com/wxlogin/wxlogin/internal/msgcrypt"
)

// Push modes and formats, as the mini program console names them.
const (
	PushPlain      = "plain"
	PushSafe       = "safe"
	PushCompatible = "compatible"
	PushJSON       = "json"
	PushXML        = "xml"
)

// pushTimeout bounds a push to the service.
const pushTimeout = 10 * time.Second

// WithPushURL sets the service's public base URL: pushes go to
// <base>/wechat/push/<appid> unless a request names another URL.
func WithPushURL(base string) Option {
	return func(e *Emulator) { e.pushBase = strings.TrimRight(base, "/") }
}

// PushRequest asks the emulator to push an event to the service as WeChat
// does: built, signed with the app's push_token and, in safe or compatible
// mode, encrypted with its push_aes_key.
type PushRequest struct {
	// AppID picks the mini program (the default one when empty).
	AppID string `json:"appid,omitempty"`
	// Event is the event's name, e.g. user_authorization_revoke (any name
	// of letters, digits and "_" is sent as it is).
	Event string `json:"event"`
	// OpenID is the user's; leave it out to send an event without one.
	OpenID string `json:"openid,omitempty"`
	// RevokeInfo is what user_authorization_revoke withdrew: WeChat's codes,
	// comma-separated ("6", "6,8").
	RevokeInfo string `json:"revoke_info,omitempty"`
	// Format is json (default) or xml.
	Format string `json:"format,omitempty"`
	// Mode is plain, safe or compatible; by default safe when the app has
	// a push_aes_key, else plain.
	Mode string `json:"mode,omitempty"`
	// URL overrides where the push goes.
	URL string `json:"url,omitempty"`
	// BadSignature sends a wrong signature (and msg_signature).
	BadSignature bool `json:"bad_signature,omitempty"`
}

// PushResponse is what the service answered, and the request it was sent,
// for tests that replay it.
type PushResponse struct {
	Status  int           `json:"status"`
	Body    string        `json:"body"`
	Request PushedRequest `json:"request"`
}

// PushedRequest is a push as it went out.
type PushedRequest struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
}

// pushMessage is an event in WeChat's field order (JSON format).
type pushMessage struct {
	ToUserName   string `json:"ToUserName"`
	FromUserName string `json:"FromUserName,omitempty"`
	CreateTime   int64  `json:"CreateTime,omitempty"`
	MsgType      string `json:"MsgType,omitempty"`
	Event        string `json:"Event,omitempty"`
	OpenID       string `json:"OpenID,omitempty"`
	AppID        string `json:"AppID,omitempty"`
	RevokeInfo   string `json:"RevokeInfo,omitempty"`
	Encrypt      string `json:"Encrypt,omitempty"`
}

// Push builds the event, signs (and encrypts) it for the app and POSTs it to
// the service, returning the service's answer.
func (e *Emulator) Push(ctx context.Context, req PushRequest) (PushResponse, error) {
	e.mu.Lock()
	a, ierr := e.app(req.AppID)
	var cfg config.App
	if ierr == nil {
		cfg = a.cfg
	}
	e.mu.Unlock()
	if ierr != nil {
		return PushResponse{}, ierr
	}
	switch {
	case !validEvent(req.Event):
		return PushResponse{}, badInput("invalid_event", "event must be 1 to 64 characters of a-z, A-Z, 0-9 and _")
	case req.OpenID != "" && !emukit.ValidID(req.OpenID):
		return PushResponse{}, badInput("invalid_openid", "openid must be 1 to 128 characters of A-Z a-z 0-9 - _")
	case !validCodes(req.RevokeInfo):
		return PushResponse{}, badInput("invalid_revoke_info", "revoke_info must be WeChat's codes, comma-separated, e.g. \"6,8\"")
	case cfg.PushToken == "":
		return PushResponse{}, badInput("push_not_configured", "app %s has no push_token in APP_APPS", cfg.AppID)
	}
	format := or(req.Format, PushJSON)
	if format != PushJSON && format != PushXML {
		return PushResponse{}, badInput("invalid_format", "format must be json or xml")
	}
	mode := req.Mode
	if mode == "" {
		mode = PushPlain
		if cfg.PushAESKey != "" {
			mode = PushSafe
		}
	}
	if mode != PushPlain && mode != PushSafe && mode != PushCompatible {
		return PushResponse{}, badInput("invalid_mode", "mode must be plain, safe or compatible")
	}
	target := req.URL
	if target == "" {
		if e.pushBase == "" {
			return PushResponse{}, badInput("invalid_url", "give \"url\": the emulator does not know the service's address")
		}
		target = e.pushBase + "/wechat/push/" + url.PathEscape(cfg.AppID)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return PushResponse{}, badInput("invalid_url", "url must be an http(s) URL")
	}

	now := e.now()
	msg := pushMessage{ToUserName: ghID(cfg.AppID), FromUserName: platformSender(cfg.AppID), CreateTime: now.Unix(),
		MsgType: "event", Event: req.Event, OpenID: req.OpenID, AppID: cfg.AppID, RevokeInfo: req.RevokeInfo}
	ts, nonce := strconv.FormatInt(now.Unix(), 10), randomString("0123456789", 10)
	q := u.Query()
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	q.Set("signature", msgcrypt.Signature(cfg.PushToken, ts, nonce))
	if req.OpenID != "" {
		q.Set("openid", req.OpenID)
	}
	body := render(format, msg)
	if mode != PushPlain {
		if cfg.PushAESKey == "" {
			return PushResponse{}, badInput("push_not_configured", "%s mode needs push_aes_key for app %s", mode, cfg.AppID)
		}
		key, err := msgcrypt.ParseKey(cfg.PushAESKey)
		if err != nil {
			return PushResponse{}, badInput("push_not_configured", "app %s: push_aes_key is not an EncodingAESKey", cfg.AppID)
		}
		enc, err := key.Encrypt([]byte(body), cfg.AppID)
		if err != nil {
			return PushResponse{}, err
		}
		outer := pushMessage{ToUserName: msg.ToUserName, Encrypt: enc}
		if mode == PushCompatible {
			outer = msg
			outer.Encrypt = enc
		}
		body = render(format, outer)
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", msgcrypt.Signature(cfg.PushToken, ts, nonce, enc))
	}
	if req.BadSignature {
		q.Set("signature", strings.Repeat("0", 40))
		if q.Has("msg_signature") {
			q.Set("msg_signature", strings.Repeat("0", 40))
		}
	}
	u.RawQuery = q.Encode()
	sent := PushedRequest{Method: http.MethodPost, URL: u.String(), ContentType: "application/json", Body: body}
	if format == PushXML {
		sent.ContentType = "text/xml"
	}

	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, sent.URL, strings.NewReader(body))
	if err != nil {
		return PushResponse{}, badInput("invalid_url", "url must be an http(s) URL")
	}
	hreq.Header.Set("Content-Type", sent.ContentType)
	resp, err := e.pushClient.Do(hreq)
	if err != nil {
		return PushResponse{}, &InputError{Status: http.StatusBadGateway, Code: "push_failed", Message: "the service did not answer the push: " + err.Error()}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e.log.Debug("push sent")
	return PushResponse{Status: resp.StatusCode, Body: string(answer), Request: sent}, nil
}

// render writes msg in the push format.
func render(format string, m pushMessage) string {
	if format == PushJSON {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(m) // strings and an int: cannot fail
		return strings.TrimSuffix(buf.String(), "\n")
	}
	var b strings.Builder
	b.WriteString("<xml>")
	field := func(name, v string) {
		if v != "" {
			fmt.Fprintf(&b, "<%s><![CDATA[%s]]></%s>", name, strings.ReplaceAll(v, "]]>", "]]]]><![CDATA[>"), name)
		}
	}
	field("ToUserName", m.ToUserName)
	field("FromUserName", m.FromUserName)
	if m.CreateTime != 0 {
		fmt.Fprintf(&b, "<CreateTime>%d</CreateTime>", m.CreateTime)
	}
	field("MsgType", m.MsgType)
	field("Event", m.Event)
	field("OpenID", m.OpenID)
	field("AppID", m.AppID)
	field("RevokeInfo", m.RevokeInfo)
	field("Encrypt", m.Encrypt)
	b.WriteString("</xml>")
	return b.String()
}

// ghID is the mini program's original id (gh_…), made up from its appid.
func ghID(appid string) string {
	sum := sha256.Sum256([]byte("gh:" + appid))
	return "gh_" + hex.EncodeToString(sum[:6])
}

// platformSender is the FromUserName of the platform's events, made up.
func platformSender(appid string) string {
	sum := sha256.Sum256([]byte("sender:" + appid))
	return "o" + hex.EncodeToString(sum[:])[:27]
}

func validEvent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validCodes(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, p := range strings.Split(s, ",") {
		if s != "" && !digits(strings.TrimSpace(p), 1, 4) {
			return false
		}
	}
	return true
}

func (e *Emulator) handlePush(r *http.Request) (any, error) {
	var req PushRequest
	if err := emukit.Decode(r, &req); err != nil {
		return nil, err
	}
	return e.Push(r.Context(), req)
}
