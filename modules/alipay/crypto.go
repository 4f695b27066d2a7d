package alipay

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
)

// SigningString is the text an Alipay gateway request signs: every
// parameter but sign and the empty ones, sorted by key (ASCII), joined as
// k=v with "&", values raw (not URL-encoded). sign_type is included.
func SigningString(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k, vs := range params {
		if k == "sign" || len(vs) == 0 || vs[0] == "" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params.Get(k))
	}
	return b.String()
}

// Sign signs params' SigningString with SHA256withRSA (RSA2) and key, and
// returns the standard base64 signature for the "sign" parameter.
func Sign(key *rsa.PrivateKey, params url.Values) (string, error) {
	return SignBytes(key, []byte(SigningString(params)))
}

// SignBytes signs content with SHA256withRSA (PKCS#1 v1.5) and returns the
// standard base64 signature.
func SignBytes(key *rsa.PrivateKey, content []byte) (string, error) {
	sum := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// ErrBadSignature means a signature is missing, not base64, or does not
// verify with the Alipay public key.
var ErrBadSignature = errors.New("alipay: the signature does not verify with the Alipay public key")

// Verify checks an Alipay SHA256withRSA signature (base64) over content,
// exactly the bytes received.
func Verify(key *rsa.PublicKey, content []byte, sig string) error {
	if sig == "" {
		return fmt.Errorf("%w: no signature", ErrBadSignature)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: the signature is not base64", ErrBadSignature)
	}
	sum := sha256.Sum256(content)
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], raw); err != nil {
		return ErrBadSignature
	}
	return nil
}

// ResponseNode is the key of a method's answer in a gateway response:
// "alipay.system.oauth.token" → "alipay_system_oauth_token_response".
func ResponseNode(method string) string { return strings.ReplaceAll(method, ".", "_") + "_response" }

// gatewayBody is a gateway answer split into its top-level members, each
// value exactly as received (the signature covers those bytes).
type gatewayBody struct {
	members map[string]json.RawMessage
}

// parseGatewayBody splits a JSON object into its members, refusing
// anything else and duplicate members (two candidates for the signed node).
func parseGatewayBody(body []byte) (gatewayBody, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return gatewayBody{}, errors.New("not a JSON object")
	}
	g := gatewayBody{members: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return gatewayBody{}, errors.New("malformed JSON")
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return gatewayBody{}, errors.New("malformed JSON")
		}
		if _, dup := g.members[key]; dup {
			return gatewayBody{}, fmt.Errorf("member %q appears twice", key)
		}
		g.members[key] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return gatewayBody{}, errors.New("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return gatewayBody{}, errors.New("data after the JSON object")
	}
	return g, nil
}

// sign returns the body's "sign" member; ok is false when there is none.
func (g gatewayBody) sign() (sig string, ok bool, err error) {
	raw, ok := g.members["sign"]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &sig); err != nil {
		return "", true, errors.New("sign is not a string")
	}
	return sig, true, nil
}

// decryptAES opens Alipay's encrypted content: standard base64 of
// AES-CBC ciphertext under key, IV of 16 zero bytes, PKCS#5/7 padding.
func decryptAES(key []byte, content string) ([]byte, error) {
	data, err := base64.StdEncoding.DecodeString(content)
	if err != nil {
		return nil, errors.New("the encrypted content is not base64")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, errors.New("unusable AES key")
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, errors.New("the encrypted content is not whole AES blocks")
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, make([]byte, aes.BlockSize)).CryptBlocks(plain, data)
	n := int(plain[len(plain)-1])
	if n < 1 || n > aes.BlockSize {
		return nil, errors.New("bad padding after decryption")
	}
	for _, c := range plain[len(plain)-n:] {
		if int(c) != n {
			return nil, errors.New("bad padding after decryption")
		}
	}
	return plain[:len(plain)-n], nil
}
