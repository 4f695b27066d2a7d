// Package emukit is what the platform emulators (qqemu, douyinemu,
// alipayemu) share: the fault queue and call counts of their wire paths, and
// the development-only device API's JSON handling — bodies of one JSON
// object with known fields, answers as JSON, errors as
// {"error":{"code","message"}} — in the shape of the WeChat emulator's.
package emukit

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxDeviceBody caps device-API request bodies.
const MaxDeviceBody = 64 << 10

// MaxWireBody caps what the emulators read of a wire request's body.
const MaxWireBody = 1 << 20

// InputError is a device-API request an emulator refuses. Over HTTP it is
// answered with Status and {"error":{"code":Code,"message":Message}}.
type InputError struct {
	// Status is the HTTP status: 400 unless said otherwise.
	Status  int
	Code    string
	Message string
}

// Error returns the code and the message.
func (e *InputError) Error() string { return "emulator: " + e.Code + ": " + e.Message }

// BadInput is a 400 InputError.
func BadInput(code, format string, args ...any) *InputError {
	return &InputError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Fault makes the next Count calls of a wire path fail. ErrCode answers with
// the platform's error code in its own error shape (QQ errcode, Douyin
// err_no, Alipay's gateway code with SubCode); HTTPStatus answers with that
// status and an empty body; Body answers HTTP 200 with exactly that body (a
// malformed or unsigned answer); DelayMS waits first (giving up if the client
// does), and alone only slows the call.
type Fault struct {
	Path       string `json:"path"`
	ErrCode    int    `json:"errcode,omitempty"`
	SubCode    string `json:"sub_code,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Body       string `json:"body,omitempty"`
	DelayMS    int    `json:"delay_ms,omitempty"`
	Count      int    `json:"count"`
}

// Wire counts the calls of an emulator's wire paths and holds their faults.
type Wire struct {
	paths  []string
	mu     sync.Mutex
	faults map[string][]*Fault
	calls  map[string]int
}

// NewWire returns the fault queue and counters of paths.
func NewWire(paths ...string) *Wire {
	return &Wire{paths: paths, faults: map[string][]*Fault{}, calls: map[string]int{}}
}

// Paths lists the wire paths.
func (w *Wire) Paths() []string { return slices.Clone(w.paths) }

// AddFault queues a fault; faults of one path apply in the order added.
func (w *Wire) AddFault(f Fault) error {
	set := 0
	for _, b := range []bool{f.ErrCode != 0 || f.SubCode != "", f.HTTPStatus != 0, f.Body != ""} {
		if b {
			set++
		}
	}
	switch {
	case !slices.Contains(w.paths, f.Path):
		return BadInput("invalid_fault", "path must be one of %s", strings.Join(w.paths, ", "))
	case f.Count < 1 || f.Count > 1_000_000:
		return BadInput("invalid_fault", "count must be between 1 and 1000000")
	case set == 0 && f.DelayMS == 0:
		return BadInput("invalid_fault", "give errcode, http_status, body or delay_ms")
	case set > 1:
		return BadInput("invalid_fault", "give one of errcode, http_status and body")
	case f.HTTPStatus != 0 && (f.HTTPStatus < 200 || f.HTTPStatus > 599):
		return BadInput("invalid_fault", "http_status must be between 200 and 599")
	case f.DelayMS < 0 || f.DelayMS > 600_000:
		return BadInput("invalid_fault", "delay_ms must be between 0 and 600000")
	case len(f.Body) > MaxDeviceBody/2:
		return BadInput("invalid_fault", "body must be at most %d bytes", MaxDeviceBody/2)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.faults[f.Path] = append(w.faults[f.Path], &f)
	return nil
}

// ClearFaults drops every pending fault and says how many calls they would
// still have failed.
func (w *Wire) ClearFaults() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, fs := range w.faults {
		for _, f := range fs {
			n += f.Count
		}
	}
	clear(w.faults)
	return n
}

// Faults lists the pending faults, by path, each with the calls it has left.
func (w *Wire) Faults() []Fault {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := []Fault{}
	for _, p := range w.paths {
		for _, f := range w.faults[p] {
			out = append(out, *f)
		}
	}
	return out
}

// Calls returns how many calls each wire path received, every path present.
func (w *Wire) Calls() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.paths))
	for _, p := range w.paths {
		out[p] = w.calls[p]
	}
	return out
}

// enter counts a call and takes the fault it must suffer, if any.
func (w *Wire) enter(path string) *Fault {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[path]++
	fs := w.faults[path]
	if len(fs) == 0 {
		return nil
	}
	f := *fs[0]
	if fs[0].Count--; fs[0].Count == 0 {
		w.faults[path] = fs[1:]
		if len(w.faults[path]) == 0 {
			delete(w.faults, path)
		}
	}
	return &f
}

// Handle wraps the wire endpoint h of path: it counts the call, waits out a
// fault's delay (returning if the client gives up), answers a fault's HTTP
// status (empty body of ctype) or Body (HTTP 200, ctype), hands an error-code
// fault to writeError, and otherwise runs h.
func (w *Wire) Handle(path, ctype string, writeError func(http.ResponseWriter, *http.Request, Fault), h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		f := w.enter(path)
		if f != nil && f.DelayMS > 0 {
			// Read the body first: only then does net/http notice a client
			// that gives up, and end the delay.
			body, _ := io.ReadAll(io.LimitReader(r.Body, MaxWireBody))
			r.Body = io.NopCloser(bytes.NewReader(body))
			t := time.NewTimer(time.Duration(f.DelayMS) * time.Millisecond)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		switch {
		case f != nil && f.HTTPStatus != 0:
			rw.Header().Set("Content-Type", ctype)
			rw.Header().Set("Content-Length", "0")
			rw.WriteHeader(f.HTTPStatus)
		case f != nil && f.Body != "":
			rw.Header().Set("Content-Type", ctype)
			rw.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(rw, f.Body)
		case f != nil && (f.ErrCode != 0 || f.SubCode != ""):
			writeError(rw, r, *f)
		default:
			h(rw, r)
		}
	})
}

// StatsResponse is GET /emulator/stats.
type StatsResponse struct {
	Calls map[string]int `json:"calls"`
}

// DeviceFunc answers one device-API call with a value to encode as JSON,
// or an error (an *InputError for the client's mistakes).
type DeviceFunc func(r *http.Request) (any, error)

// Device wraps a device-API endpoint: method check, JSON answer, errors as
// {"error":{"code","message"}}.
func Device(method string, h DeviceFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		var err error
		if method != "" && r.Method != method {
			w.Header().Set("Allow", method)
			err = &InputError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "use " + method}
		} else {
			v, err = h(r)
		}
		status := http.StatusOK
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				ie = &InputError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error"}
			}
			status = ie.Status
			v = map[string]any{"error": map[string]string{"code": ie.Code, "message": ie.Message}}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, CompactJSON(v)+"\n")
	})
}

// DeviceMux serves the device API at /login, /faults (POST adds, DELETE
// clears, GET lists) and /stats, answering anything else under / with 404.
func DeviceMux(w *Wire, login DeviceFunc) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/login", Device(http.MethodPost, login))
	mux.Handle("/faults", Device("", func(r *http.Request) (any, error) { return w.HandleFaults(r) }))
	mux.Handle("/stats", Device(http.MethodGet, func(*http.Request) (any, error) { return StatsResponse{Calls: w.Calls()}, nil }))
	mux.Handle("/", Device("", func(*http.Request) (any, error) {
		return nil, &InputError{Status: http.StatusNotFound, Code: "not_found",
			Message: "no such device API; see the emulator's documentation (login, faults, stats)"}
	}))
	return mux
}

// HandleFaults is the device API's /faults: POST adds one, DELETE clears,
// GET lists.
func (w *Wire) HandleFaults(r *http.Request) (any, error) {
	switch r.Method {
	case http.MethodPost:
		var f Fault
		if err := Decode(r, &f); err != nil {
			return nil, err
		}
		if err := w.AddFault(f); err != nil {
			return nil, err
		}
		return map[string]any{"fault": f, "pending": w.Faults()}, nil
	case http.MethodDelete:
		return map[string]int{"cleared": w.ClearFaults()}, nil
	case http.MethodGet:
		return map[string]any{"faults": w.Faults()}, nil
	}
	return nil, &InputError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "use POST, DELETE or GET"}
}

// Decode reads a device-API body into v: one JSON object with known fields,
// or nothing at all (all fields empty). Content-Type is ignored, so
// `curl -d '{...}'` works.
func Decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxDeviceBody+1))
	if err != nil {
		return BadInput("invalid_json", "the request body could not be read")
	}
	if len(body) > MaxDeviceBody {
		return &InputError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("the body must be at most %d bytes", MaxDeviceBody)}
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	if body[0] != '{' {
		return BadInput("invalid_json", "the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return BadInput("invalid_json", "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadInput("invalid_json", "the request body must hold exactly one JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type.Kind())
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends too early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
}

// CompactJSON encodes v as JavaScript's JSON.stringify would: no HTML
// escaping, no trailing newline.
func CompactJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return `{"error":{"code":"internal_error","message":"cannot encode the answer"}}`
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// Alphabets for RandomString.
const (
	Alnum    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	URLAlpha = Alnum + "-_"
	Digits   = "0123456789"
	HexLower = "0123456789abcdef"
)

// RandomString returns n characters of alphabet from crypto/rand.
func RandomString(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// ValidID reports whether s is 1 to 128 characters of A-Z a-z 0-9 - _.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// PickApp returns the appid a device call names — one of apps — or the
// only app when it names none; else an InputError.
func PickApp(appid string, apps []string) (string, error) {
	if appid == "" {
		if len(apps) == 1 {
			return apps[0], nil
		}
		if len(apps) == 0 {
			return "", BadInput("unknown_appid", "the emulator has no app of this platform configured")
		}
		return "", BadInput("invalid_appid", "appid is required: one of %s", strings.Join(apps, ", "))
	}
	if !slices.Contains(apps, appid) {
		return "", BadInput("unknown_appid", "appid %q is not an app of this platform; configured: %s", appid, strings.Join(apps, ", "))
	}
	return appid, nil
}
