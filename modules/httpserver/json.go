package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gofiber/fiber/v2"
)

// DecodeJSON decodes the request body, which must be one JSON object, into
// v. Every problem is a 400 "invalid_json" whose message says what is
// wrong (empty body, syntax, a field of the wrong type, trailing data).
// The Content-Type is not trusted either way: mini programs send JSON.
func DecodeJSON(c *fiber.Ctx, v any) error {
	body := bytes.TrimSpace(c.Body())
	if len(body) == 0 {
		return BadRequest("invalid_json", "the request body must be a JSON object")
	}
	if body[0] != '{' {
		msg := "the request body must be a JSON object"
		if bytes.Contains(body, []byte("=")) {
			msg += " (it looks form-encoded; send JSON: form encoding turns '+' into spaces)"
		}
		return BadRequest("invalid_json", msg)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return BadRequest("invalid_json", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadRequest("invalid_json", "the request body must hold exactly one JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be a %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return "the request body must be a JSON object"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends too early"
	}
	return "malformed JSON"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int64", "int32", "float64", "uint", "uint64":
		return "number"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	}
	return "object"
}
