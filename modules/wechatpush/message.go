package wechatpush

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
)

// Message is a push as WeChat sends it, in JSON or XML: the fields the
// user-authorization events carry, and Encrypt in safe mode.
type Message struct {
	ToUserName   string
	FromUserName string
	CreateTime   int64
	// MsgType is "event" for events; compare case-insensitively (WeChat's
	// table says "Event", its samples "event").
	MsgType string
	Event   string
	// OpenID and AppID name the user (WeChat writes OpenID/AppID in this
	// casing, unlike FromUserName). OpenID may be missing [C].
	OpenID string
	AppID  string
	// RevokeInfo is what a user_authorization_revoke withdrew, as WeChat's
	// codes; RawRevokeInfo is the field as sent.
	RevokeInfo    []int
	RawRevokeInfo string
	// Encrypt is the ciphertext of safe (and compatible) mode.
	Encrypt string
}

// ErrBadMessage: the body is neither a JSON object nor an XML document of
// WeChat's shape.
var ErrBadMessage = errors.New("wechatpush: the body is not a push message")

// MaxBody bounds a push's body (they are a few hundred bytes).
const MaxBody = 64 << 10

// ParseMessage reads a push body in JSON or XML, told apart by its first
// character. Field names are matched case-insensitively and trimmed (some
// of WeChat's JSON samples write " OpenID"); numbers may come as strings and
// the other way round. Unknown fields are ignored.
func ParseMessage(body []byte) (Message, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || len(body) > MaxBody {
		return Message{}, ErrBadMessage
	}
	fields := map[string]string{}
	var err error
	switch body[0] {
	case '{':
		err = jsonFields(body, fields)
	case '<':
		err = xmlFields(body, fields)
	default:
		err = ErrBadMessage
	}
	if err != nil {
		return Message{}, err
	}
	m := Message{
		ToUserName:    fields["tousername"],
		FromUserName:  fields["fromusername"],
		MsgType:       fields["msgtype"],
		Event:         fields["event"],
		OpenID:        fields["openid"],
		AppID:         fields["appid"],
		RawRevokeInfo: fields["revokeinfo"],
		Encrypt:       fields["encrypt"],
	}
	if ct := fields["createtime"]; ct != "" {
		if m.CreateTime, err = strconv.ParseInt(ct, 10, 64); err != nil {
			return Message{}, ErrBadMessage
		}
	}
	m.RevokeInfo = revokeCodes(m.RawRevokeInfo)
	return m, nil
}

// revokeCodes reads RevokeInfo: one code or several separated by commas,
// spaces or "|" [U: WeChat's samples show one code; the list form is our
// assumption]. Anything that is not a code is skipped.
func revokeCodes(s string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '|' || r == ' ' || r == ';' }) {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n >= 0 && len(out) < 64 {
			out = append(out, n)
		}
	}
	return out
}

// jsonFields flattens a JSON object's scalar members (and a list of
// scalars, joined with commas) into fields, keyed by lowercased trimmed name.
func jsonFields(body []byte, fields map[string]string) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return ErrBadMessage
	}
	for k, v := range raw {
		key := strings.ToLower(strings.TrimSpace(k))
		if s, ok := scalar(v); ok {
			fields[key] = s
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(v, &list) == nil {
			var parts []string
			for _, item := range list {
				if s, ok := scalar(item); ok {
					parts = append(parts, s)
				}
			}
			fields[key] = strings.Join(parts, ",")
		}
	}
	return nil
}

// scalar reads a JSON string or number as text.
func scalar(v json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return strings.TrimSpace(s), true
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if dec.Decode(&n) == nil {
		return n.String(), true
	}
	return "", false
}

// xmlFields reads the text of the root element's children (CDATA
// included), keyed by lowercased local name; deeper elements are skipped.
// Go's XML decoder expands no external or custom entities.
func xmlFields(body []byte, fields map[string]string) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	var key string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF included: the root never closed
			return ErrBadMessage
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > 8 {
				return ErrBadMessage
			}
			if depth == 2 {
				key = strings.ToLower(t.Name.Local)
				text.Reset()
			}
		case xml.CharData:
			if depth == 2 && text.Len() < MaxBody {
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 2 {
				fields[key] = strings.TrimSpace(text.String())
			}
			depth--
			if depth == 0 {
				return nil // the root closed: whatever follows is not ours
			}
		}
	}
}
