// Package platformhttp is the outbound HTTP plumbing the platform clients
// (qq, douyin, alipay) share: an http.Client that verifies TLS and never
// follows redirects, one bounded call that caps the body it reads, errors
// that never hold a URL (whose query may carry a secret) or a secret, the
// two error types every platform gives when no usable answer came back, and,
// for the platforms whose APIs need a server access token (qq, douyin), their
// apps with fleet-wide token managers ([Apps], built from [Options]).
//
// The errors implement provider.Classifier, so the login flow maps them like
// any platform's: [*TransportError] is KindUnavailable, [*ResponseError] is
// KindUnavailable (KindRateLimited for HTTP 429).
package platformhttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/wxlogin/wxlogin/modules/provider"
)

// MaxResponseBytes caps the body read from a platform; a larger one is an error.
const MaxResponseBytes = 1 << 20

// DefaultTimeout bounds each call when no timeout is configured.
const DefaultTimeout = 5 * time.Second

// Redacted replaces secrets in texts.
const Redacted = "[redacted]"

// NewHTTPClient returns a copy of custom (or a fresh client) that never
// follows redirects — a redirect would carry a secret to another host —
// refusing one configured to skip TLS verification.
func NewHTTPClient(custom *http.Client) (*http.Client, error) {
	var hc http.Client
	if custom != nil {
		hc = *custom
		if t, ok := hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil && t.TLSClientConfig.InsecureSkipVerify {
			return nil, errors.New("refusing an HTTP client that skips TLS verification")
		}
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		t.MaxIdleConnsPerHost = 64
		hc.Transport = t
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, nil
}

// BaseURL checks an API root (an http(s) URL without query or fragment) and
// trims its trailing slashes; an empty raw gives def.
func BaseURL(raw, def string) (string, error) {
	if raw == "" {
		raw = def
	}
	base := strings.TrimRight(raw, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("base URL %q is not an http(s) URL without a query", raw)
	}
	return base, nil
}

// Request is one outbound call.
type Request struct {
	Method string
	// URL is the whole URL, query included.
	URL string
	// Body is sent when not nil, with ContentType.
	Body        []byte
	ContentType string
}

// Response is what came back.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// ErrTooLarge is returned (with the status and Content-Type in the
// Response) when the body exceeds the cap.
var ErrTooLarge = errors.New("body too large")

// Do performs r with hc within timeout, reading at most max bytes of the
// body. A transport failure comes back without net/http's *url.Error, so its
// text never holds the URL.
func Do(ctx context.Context, hc *http.Client, timeout time.Duration, r Request, max int64) (Response, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return Response{}, WithoutURL(err)
	}
	req.Header.Set("Accept", "application/json")
	if r.Body != nil && r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Response{}, WithoutURL(err)
	}
	defer resp.Body.Close()
	out := Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type")}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return out, fmt.Errorf("read body: %w", WithoutURL(err))
	}
	if int64(len(b)) > max {
		return out, ErrTooLarge
	}
	out.Body = b
	return out, nil
}

// WithoutURL strips net/http's *url.Error, whose text holds the full URL
// (with ?secret= or ?access_token=), keeping only the cause.
func WithoutURL(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) {
			return err
		}
		if ue.Err == nil {
			return errors.New(ue.Op + " failed")
		}
		err = ue.Err
	}
}

// Scrub replaces every non-empty secret in s, as is and URL-encoded.
func Scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if v == "" {
			continue
		}
		s = strings.ReplaceAll(s, v, Redacted)
		if q := url.QueryEscape(v); q != v {
			s = strings.ReplaceAll(s, q, Redacted)
		}
	}
	return s
}

// ScrubError returns err unchanged unless its text holds a secret, in which
// case only the scrubbed text is kept.
func ScrubError(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if clean := Scrub(s, secrets); clean != s {
		return errors.New(clean)
	}
	return err
}

// TransportError is a call that got no answer: timeout, connection refused,
// DNS or TLS failure, cancelled context. It unwraps to the cause (e.g.
// context.DeadlineExceeded) and never holds a URL.
type TransportError struct {
	// Platform is "qq", "douyin", "alipay".
	Platform string
	// Path is the API path (or method) that was called.
	Path string
	// Err is the cause, without net/http's *url.Error.
	Err error
}

// Error names the platform, the path and the cause, never the URL.
func (e *TransportError) Error() string {
	return e.Platform + " " + e.Path + ": unavailable: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// ProviderError classifies the error: the platform is unavailable.
func (e *TransportError) ProviderError() (string, provider.Kind) {
	return e.Platform, provider.KindUnavailable
}

// ResponseError is an answer that could not be used: an HTTP error without
// the platform's error shape, a body that is empty, not JSON, too large,
// unsigned or badly signed, or a "success" without its essential fields.
// The body itself is never kept.
type ResponseError struct {
	Platform string
	// Path is the API path (or method) that answered.
	Path string
	// StatusCode is the HTTP status.
	StatusCode int
	// ContentType is the Content-Type header as sent.
	ContentType string
	// Problem says what was wrong with the answer.
	Problem string
}

// Error names the platform, path, status, Content-Type and problem.
func (e *ResponseError) Error() string {
	return fmt.Sprintf("%s %s: unusable answer (HTTP %d, %q): %s", e.Platform, e.Path, e.StatusCode, e.ContentType, e.Problem)
}

// ProviderError classifies the error: HTTP 429 is a rate limit, anything
// else means the platform is unavailable.
func (e *ResponseError) ProviderError() (string, provider.Kind) {
	if e.StatusCode == http.StatusTooManyRequests {
		return e.Platform, provider.KindRateLimited
	}
	return e.Platform, provider.KindUnavailable
}

var (
	_ provider.Classifier = (*TransportError)(nil)
	_ provider.Classifier = (*ResponseError)(nil)
)

// Traced wraps rt (nil: http.DefaultTransport) so that every call is a
// client span of tp named "<platform> <METHOD> <path>", with OpenTelemetry's
// HTTP attributes (otelhttp). The query string, which carries AppSecrets,
// login codes and access tokens, never reaches the span: it is taken off
// the URL before otelhttp sees the request and put back after. No trace
// context is sent to the platform. A nil or no-op tp (tracing off) returns
// rt unchanged.
func Traced(rt http.RoundTripper, tp trace.TracerProvider, platform string) http.RoundTripper {
	if _, off := tp.(tracenoop.TracerProvider); tp == nil || off {
		return rt
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	traced := otelhttp.NewTransport(restoreQuery{rt},
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return platform + " " + r.Method + " " + r.URL.Path
		}))
	return hideQuery{next: traced, base: rt}
}

// TracedClient returns hc with its transport wrapped by [Traced] (hc is
// changed; NewHTTPClient's result is the caller's own copy).
func TracedClient(hc *http.Client, tp trace.TracerProvider, platform string) *http.Client {
	hc.Transport = Traced(hc.Transport, tp, platform)
	return hc
}

type queryKey struct{}

// hideQuery takes the query string off the URL for the layers inside it,
// keeping it in the request's context. base is the transport that sends.
type hideQuery struct{ next, base http.RoundTripper }

func (h hideQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.RawQuery == "" && r.URL.User == nil {
		return h.next.RoundTrip(r)
	}
	r2 := r.Clone(context.WithValue(r.Context(), queryKey{}, r.URL))
	r2.URL.RawQuery, r2.URL.ForceQuery, r2.URL.User = "", false, nil
	return h.next.RoundTrip(r2)
}

// restoreQuery puts back what hideQuery took off, for the transport that
// sends the request.
type restoreQuery struct{ next http.RoundTripper }

func (x restoreQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	orig, ok := r.Context().Value(queryKey{}).(*url.URL)
	if !ok {
		return x.next.RoundTrip(r)
	}
	r2 := *r // a shallow copy: only the URL changes
	u := *r.URL
	u.RawQuery, u.ForceQuery, u.User = orig.RawQuery, orig.ForceQuery, orig.User
	r2.URL = &u
	return x.next.RoundTrip(&r2)
}

// CloseIdleConnections reaches the transport that sends (otelhttp's
// does not pass it on), so http.Client.CloseIdleConnections keeps working.
func (h hideQuery) CloseIdleConnections() {
	type closer interface{ CloseIdleConnections() }
	if c, ok := h.base.(closer); ok {
		c.CloseIdleConnections()
	}
}
