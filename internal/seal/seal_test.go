package seal_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/internal/seal"
)

func key(id string, b byte) seal.Key {
	return seal.Key{ID: id, Secret: bytes.Repeat([]byte{b}, seal.KeySize)}
}

func TestSealOpens(t *testing.T) {
	r, err := seal.New(key("k1", 1))
	require.NoError(t, err)
	s := r.Seal([]byte("o0q0otL8aEzpcZL/FT9WsQ=="), []byte("wechat\x00wxA\x00o-1"))
	require.True(t, seal.IsSealed(s))
	require.NotContains(t, s, "o0q0otL8")
	require.LessOrEqual(t, len(s), seal.SealedLen(24, 2))
	plain, err := r.Open(s, []byte("wechat\x00wxA\x00o-1"))
	require.NoError(t, err)
	require.Equal(t, "o0q0otL8aEzpcZL/FT9WsQ==", string(plain))
	require.NotEqual(t, s, r.Seal([]byte("o0q0otL8aEzpcZL/FT9WsQ=="), []byte("wechat\x00wxA\x00o-1")), "a fresh nonce every time")

	_, err = r.Open(s, []byte("wechat\x00wxA\x00o-2"))
	require.ErrorIs(t, err, seal.ErrOpen, "bound to where it is kept")
	parts := strings.Split(s, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	for _, i := range []int{0, len(raw) / 2, len(raw) - 1} { // nonce, ciphertext, tag
		flipped := bytes.Clone(raw)
		flipped[i] ^= 0x01
		tampered := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(flipped)
		_, err = r.Open(tampered, []byte("wechat\x00wxA\x00o-1"))
		require.ErrorIs(t, err, seal.ErrOpen, "byte %d flipped", i)
	}
	for _, bad := range []string{"", "plain", "s1.", "s1.k1", "s1.k1.!!", "s1.k9." + strings.Split(s, ".")[2], "s1.k1.AAAA"} {
		_, err = r.Open(bad, nil)
		require.ErrorIs(t, err, seal.ErrOpen, bad)
	}
}

func TestRotation(t *testing.T) {
	old, _ := seal.New(key("old", 1))
	s := old.Seal([]byte("secret"), nil)
	rotated, err := seal.New(key("new", 2), key("old", 1))
	require.NoError(t, err)
	plain, err := rotated.Open(s, nil)
	require.NoError(t, err, "the old key still opens")
	require.Equal(t, "secret", string(plain))
	require.Contains(t, rotated.Seal([]byte("x"), nil), "s1.new.", "the first key seals")
	retired, _ := seal.New(key("new", 2))
	_, err = retired.Open(s, nil)
	require.ErrorIs(t, err, seal.ErrOpen)
}

func TestRingRefusesBadKeys(t *testing.T) {
	_, err := seal.New()
	require.Error(t, err)
	_, err = seal.New(seal.Key{ID: "k", Secret: []byte("short")})
	require.Error(t, err)
	_, err = seal.New(key("a", 1), key("a", 2))
	require.Error(t, err)
	_, err = seal.New(key("a.b", 1))
	require.Error(t, err)
}

func TestDerive(t *testing.T) {
	a, b := seal.Derive("secret-one", "x"), seal.Derive("secret-one", "y")
	require.NotEqual(t, a.Secret, b.Secret, "one secret, separate keys per purpose")
	require.Equal(t, a, seal.Derive("secret-one", "x"))
	require.Len(t, a.Secret, seal.KeySize)
	require.NotContains(t, a.ID, "secret")
}

func TestCompact(t *testing.T) {
	old, _ := seal.New(key("old", 1))
	s := old.SealCompact([]byte("12 bytes....."), []byte("access"))
	require.Len(t, s, seal.CompactLen(13), "no prefix, no key id: a fixed length")
	require.NotEqual(t, s, old.SealCompact([]byte("12 bytes....."), []byte("access")), "a fresh nonce every time")

	rotated, _ := seal.New(key("new", 2), key("old", 1))
	plain, err := rotated.OpenCompact(s, []byte("access"))
	require.NoError(t, err, "every key of the ring is tried")
	require.Equal(t, "12 bytes.....", string(plain))
	_, err = seal.Must(seal.New(key("old", 2))).OpenCompact(s, []byte("access"))
	require.ErrorIs(t, err, seal.ErrOpen, "keys are told apart by their bytes, not their ids")
	_, err = rotated.OpenCompact(s, []byte("refresh"))
	require.ErrorIs(t, err, seal.ErrOpen, "bound to its purpose")
	for i := range s {
		flipped := bytes.Clone(s)
		flipped[i] ^= 0x80
		_, err = rotated.OpenCompact(flipped, []byte("access"))
		require.ErrorIs(t, err, seal.ErrOpen, "byte %d flipped", i)
	}
	for _, short := range [][]byte{nil, s[:seal.NonceSize+seal.Overhead-1]} {
		_, err = rotated.OpenCompact(short, []byte("access"))
		require.ErrorIs(t, err, seal.ErrOpen)
	}
}
