package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"

	"go.uber.org/zap"
)

// errmsgs are WeChat's texts for the errcodes the emulator answers; the
// rid is appended to each.
var errmsgs = map[int]string{
	-1:    "system error",
	40001: "invalid credential, access_token is invalid or not latest",
	40002: "invalid grant_type",
	40003: "invalid openid",
	40013: "invalid appid",
	40014: "invalid access_token",
	40029: "invalid code",
	40125: "invalid appsecret",
	40163: "code been used",
	40226: "code blocked",
	41001: "access_token missing",
	41002: "appid missing",
	41004: "appsecret missing",
	41008: "missing code",
	41009: "missing openid",
	42001: "access_token expired",
	43002: "require POST method",
	45009: "reach max api daily quota limit",
	45011: "api minute-quota reach limit, must slower, retry next minute",
	47001: "data format error",
	48001: "api unauthorized",
	87007: "session_key is not existed or expired",
	87008: "invalid sig_method",
	87009: "invalid signature",
}

// apiError is a WeChat error answer.
type apiError struct{ code int }

func wxErr(code int) *apiError { return &apiError{code: code} }

// statusBody is the errcode/errmsg pair: the whole body of an error, the
// start of successful answers other than code2Session's.
type statusBody struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

var okStatus = statusBody{ErrCode: 0, ErrMsg: "ok"}

// wechatHandler answers one WeChat call with a success body or an *apiError.
type wechatHandler func(r *http.Request) (any, *apiError)

// wechat wraps a WeChat endpoint: it counts the call, applies a pending
// fault (emukit.Wire), and writes the answer the way WeChat does.
func (e *Emulator) wechat(path string, h wechatHandler) http.Handler {
	fault := func(w http.ResponseWriter, _ *http.Request, f Fault) { e.writeError(w, path, f.ErrCode, true) }
	return e.wire.Handle(path, "text/html; charset=gbk", fault, func(w http.ResponseWriter, r *http.Request) {
		body, err := h(r)
		if err != nil {
			e.writeError(w, path, err.code, false)
			return
		}
		e.log.Debug("wechat emulator call", zap.String("path", path), zap.Int("errcode", 0))
		writeWire(w, body)
	})
}

func (e *Emulator) writeError(w http.ResponseWriter, path string, code int, fault bool) {
	msg, known := errmsgs[code]
	if !known {
		msg = "injected fault"
	}
	rid := newRID(e.now())
	e.log.Debug("wechat emulator call", zap.String("path", path), zap.Int("errcode", code), zap.String("rid", rid), zap.Bool("fault", fault))
	writeWire(w, statusBody{ErrCode: code, ErrMsg: msg + ", rid: " + rid})
}

// writeWire writes v as WeChat does: HTTP 200, text/plain, no HTML
// escaping, and "/" escaped as "\/".
func writeWire(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // our own types: cannot happen
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	// '/' occurs only inside JSON strings, never in JSON's own syntax.
	out := bytes.ReplaceAll(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("/"), []byte(`\/`))
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}
