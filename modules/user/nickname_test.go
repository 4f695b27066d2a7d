package user_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxlogin/wxlogin/modules/user"
)

func TestNicknameCharacters(t *testing.T) {
	ok := []string{
		"小明", "Bob Smith", "🙂", "👨‍👩‍👧 family", "❤️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "é", "e\u0301", "Ａ", "…", "O'Brien", "١٢٣", "שלום", "مرحبا",
	}
	bad := []string{
		"\u202eevil", "ab\u202ecd", "\u200b", "a\u200bb", "\u2066x\u2069", "\ufeffbob", "bo\u00adb", "a\u2028b",
		"\u200d", "a\u200d", "\u3164", "\u3164\u3164", "\u2800", "\u0301", "\U000E0041", "x\U000E0041",
	}
	for _, n := range ok {
		got, err := user.ValidateNickname(n)
		require.NoError(t, err, "%q", n)
		require.Equal(t, n, got)
	}
	for _, n := range bad {
		_, err := user.ValidateNickname(n)
		var ve *user.ValidationError
		require.ErrorAs(t, err, &ve, "%q", n)
		require.Equal(t, "nickname", ve.Field)
	}
}
