package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/wxlogin/wxlogin/modules/apidoc"
	"github.com/wxlogin/wxlogin/modules/httpserver"
)

// apiDoc is the validator of modules/apidoc/openapi.json, built once.
var apiDoc = sync.OnceValues(func() (validator.Validator, error) {
	doc, err := libopenapi.NewDocument(apidoc.Document)
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi.json: %v", errs)
	}
	return v, nil
})

// checkAgainstDoc validates one exchange with the API against the
// document: the answer must be one the document describes for that route
// (status, content, error code), and a request the document calls invalid
// must be refused (4xx).
func (s *service) checkAgainstDoc(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	s.t.Helper()
	v, err := apiDoc()
	require.NoError(s.t, err)
	clone := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		return r
	}
	reqOK, reqErrs := v.ValidateHttpRequestSync(clone())
	answer := &http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(respBody))}
	respOK, respErrs := v.ValidateHttpResponse(clone(), answer)
	exchange := fmt.Sprintf("%s %s → %d %s", req.Method, req.URL.Path, resp.StatusCode, clip(respBody))
	if !respOK && slices.ContainsFunc(respErrs, func(e *verrors.ValidationError) bool {
		return e.IsPathMissingError() || e.IsOperationMissingError()
	}) {
		// No route of the document: the service must say so, in its error shape.
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(respBody, &body)
		if (resp.StatusCode != 404 || body.Error.Code != "not_found") && (resp.StatusCode != 405 || body.Error.Code != "method_not_allowed") {
			s.t.Errorf("%s %s is not in modules/apidoc/openapi.json, yet it was answered: %s", req.Method, req.URL.Path, exchange)
		}
		return
	}
	if !respOK {
		s.t.Errorf("the answer is not one modules/apidoc/openapi.json describes: %s\n%s", exchange, describe(respErrs))
	}
	if !reqOK && resp.StatusCode < 400 {
		s.t.Errorf("modules/apidoc/openapi.json calls the request invalid, yet the service accepted it: %s\n%s", exchange, describe(reqErrs))
	}
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  - %s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n      %s (%s): %s", f.FieldPath, f.KeywordLocation, f.Reason)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	v, err := apiDoc()
	require.NoError(t, err)
	ok, errs := v.ValidateDocument()
	require.True(t, ok, "modules/apidoc/openapi.json is not a valid OpenAPI 3.1 document:\n%s", describe(errs))
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	require.NoError(t, json.Unmarshal(apidoc.Document, &doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)
}

var pathParam = regexp.MustCompile(`:([A-Za-z0-9_]+)\??`)

// TestOpenAPIDocumentsEveryRoute: every route the real application serves
// is in the document, and the document describes no route nobody serves.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	var srv *httpserver.Server
	// With APP_ADMIN_TOKEN, so that the admin API is served too.
	s := bootConfig(t, testConfigFor(t, map[string]string{"APP_ADMIN_TOKEN": adminToken}), fx.Populate(&srv))

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(apidoc.Document, &doc))
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}

	served := map[string]bool{}
	routes := srv.App.GetRoutes(true)
	gets := map[string]bool{}
	for _, r := range routes {
		if r.Method == http.MethodGet {
			gets[r.Path] = true
		}
	}
	for _, r := range routes {
		if r.Method == http.MethodHead && gets[r.Path] {
			continue // Fiber answers HEAD for every GET route
		}
		served[r.Method+" "+pathParam.ReplaceAllString(r.Path, "{$1}")] = true
	}

	var missing, stale []string
	for route := range served {
		if !documented[route] {
			missing = append(missing, route)
		}
	}
	for route := range documented {
		if !served[route] {
			stale = append(stale, route)
		}
	}
	slices.Sort(missing)
	slices.Sort(stale)
	for _, route := range missing {
		t.Errorf("%s is served but not in modules/apidoc/openapi.json: add it under \"paths\" with its request body, "+
			"every answer and its error codes, and the bearer scheme if it is guarded", route)
	}
	for _, route := range stale {
		t.Errorf("modules/apidoc/openapi.json describes %s, which no module serves: remove it (or the module is missing from app/main.go)", route)
	}

	// And the service serves the document itself.
	r := s.call("GET", s.api+"/openapi.json", "", nil)
	require.Equal(t, 200, r.Status)
	require.JSONEq(t, string(apidoc.Document), string(r.Raw))
}
