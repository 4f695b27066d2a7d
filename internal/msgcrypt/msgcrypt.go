// Package msgcrypt signs, verifies, encrypts and decrypts WeChat's message
// pushes (消息推送) the way the mini program console's "safe mode" does
// (WeChat's message-push and encryption docs):
//
//   - signature = lowercase hex SHA-1 of the parts sorted bytewise and
//     concatenated: [Token, timestamp, nonce] for the URL check and plain
//     pushes, [Token, timestamp, nonce, Encrypt] for msg_signature;
//   - AESKey = base64(EncodingAESKey + "="), 32 bytes; IV = AESKey[:16];
//     AES-256-CBC with PKCS#7 padding to 32-byte blocks;
//   - plaintext = random(16) | msg_len (4 bytes, big-endian) | msg | receive_id,
//     where receive_id is the mini program's appid.
//
// Every length is checked before it is used: malformed input is an error
// ([ErrMalformed]), never a panic. The official worked example is the
// known-answer test.
package msgcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1" // WeChat's signature is SHA-1: not our choice
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sizes of the scheme.
const (
	// EncodingAESKeyLen is the length of the console's EncodingAESKey.
	EncodingAESKeyLen = 43
	// KeySize is the AES-256 key's size.
	KeySize = 32
	// BlockSize is WeChat's PKCS#7 block size (not AES's 16).
	BlockSize = 32
	randomLen = 16
	headerLen = randomLen + 4
)

var (
	// ErrMalformed: the ciphertext does not decode, decrypt or unpad into
	// WeChat's layout (a wrong key looks like this too).
	ErrMalformed = errors.New("msgcrypt: malformed ciphertext")
	// ErrReceiver: the message decrypted but was meant for another app.
	ErrReceiver = errors.New("msgcrypt: the message is for another receiver")
	// ErrKey: the EncodingAESKey is not 43 characters of base64.
	ErrKey = errors.New("msgcrypt: the EncodingAESKey must be 43 characters of base64")
)

// Signature returns WeChat's signature of parts.
func Signature(parts ...string) string {
	sorted := append([]string(nil), parts...)
	sort.Strings(sorted)
	sum := sha1.Sum([]byte(strings.Join(sorted, "")))
	return hex.EncodeToString(sum[:])
}

// Verify reports, in constant time, whether sig is the signature of parts.
func Verify(sig string, parts ...string) bool {
	want := Signature(parts...)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(sig)), []byte(want)) == 1
}

// Key is a parsed EncodingAESKey. It prints without its value.
type Key struct {
	aes [KeySize]byte
}

// ParseKey reads the console's 43-character EncodingAESKey.
func ParseKey(encodingAESKey string) (*Key, error) {
	if len(encodingAESKey) != EncodingAESKeyLen {
		return nil, ErrKey
	}
	raw, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(raw) != KeySize {
		return nil, ErrKey
	}
	k := &Key{}
	copy(k.aes[:], raw)
	return k, nil
}

// String hides the key.
func (k *Key) String() string { return "msgcrypt.Key{…}" }

// GoString hides the key from %#v.
func (k *Key) GoString() string { return k.String() }

// Decrypt opens the base64 Encrypt field of a push and returns the message,
// checking that it was meant for receiveID (our appid).
func (k *Key) Decrypt(encrypt, receiveID string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encrypt))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrMalformed)
	}
	if len(ct) < BlockSize || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of blocks", ErrMalformed, len(ct))
	}
	block, err := aes.NewCipher(k.aes[:])
	if err != nil {
		return nil, fmt.Errorf("msgcrypt: %w", err) // a 32-byte key always works
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, k.aes[:aes.BlockSize]).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > BlockSize || pad > len(plain) {
		return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrMalformed)
		}
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < headerLen {
		return nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	n := binary.BigEndian.Uint32(plain[randomLen:headerLen])
	if uint64(n) > uint64(len(plain)-headerLen) {
		return nil, fmt.Errorf("%w: the length field says more than there is", ErrMalformed)
	}
	msg, receiver := plain[headerLen:headerLen+int(n)], plain[headerLen+int(n):]
	if !bytes.Equal(receiver, []byte(receiveID)) {
		return nil, ErrReceiver
	}
	return msg, nil
}

// Encrypt seals msg for receiveID with a fresh random prefix, as WeChat
// does, and returns the base64 Encrypt field.
func (k *Key) Encrypt(msg []byte, receiveID string) (string, error) {
	var random [randomLen]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", fmt.Errorf("msgcrypt: random: %w", err)
	}
	return k.EncryptWith(random, msg, receiveID), nil
}

// EncryptWith seals msg with the given random prefix (known-answer tests
// reproduce WeChat's examples with it).
func (k *Key) EncryptWith(random [16]byte, msg []byte, receiveID string) string {
	plain := make([]byte, 0, headerLen+len(msg)+len(receiveID)+BlockSize)
	plain = append(plain, random[:]...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, receiveID...)
	pad := BlockSize - len(plain)%BlockSize
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(k.aes[:]) // a 32-byte key always works
	cipher.NewCBCEncrypter(block, k.aes[:aes.BlockSize]).CryptBlocks(plain, plain)
	return base64.StdEncoding.EncodeToString(plain)
}
