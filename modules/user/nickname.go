package user

import "unicode"

// Characters of nicknames that need a second look.
const (
	zwj       = '\u200d'     // ZERO WIDTH JOINER: joins emoji (👨‍👩‍👧)
	blackFlag = '\U0001F3F4' // starts the tag sequences of subdivision flags (🏴󠁧󠁢󠁳󠁣󠁴󠁿)
	tagFirst  = '\U000E0020'
	tagLast   = '\U000E007F'
)

// invisibleLetters are letters and symbols that render as nothing, used
// for "blank" names.
var invisibleLetters = map[rune]bool{
	'\u115f': true, '\u1160': true, '\u3164': true, '\uffa0': true, // Hangul fillers
	'\u2800': true, // BRAILLE PATTERN BLANK
	'\u180e': true, // MONGOLIAN VOWEL SEPARATOR
}

// nicknameCharacters refuses control characters, line and paragraph
// separators and format characters — bidi overrides and isolates ("\u202e"
// turns the rest of a line around), zero-width spaces and joiners, soft
// hyphens, BOMs — except the zero-width joiner inside an emoji sequence and
// the tags of a flag sequence; and it requires one visible character (a
// letter, digit, punctuation or symbol that renders as something).
func nicknameCharacters(n string) error {
	rs := []rune(n)
	visible := false
	for i, r := range rs {
		switch {
		case unicode.IsControl(r):
			return &ValidationError{Field: "nickname", Reason: "must not contain control characters"}
		case unicode.In(r, unicode.Zl, unicode.Zp):
			return &ValidationError{Field: "nickname", Reason: "must be one line"}
		case r == zwj:
			if i == 0 || i == len(rs)-1 || !unicode.IsGraphic(rs[i-1]) || !unicode.IsGraphic(rs[i+1]) ||
				unicode.IsSpace(rs[i-1]) || unicode.IsSpace(rs[i+1]) {
				return formatCharacter()
			}
		case r >= tagFirst && r <= tagLast:
			if i == 0 || (rs[i-1] != blackFlag && (rs[i-1] < tagFirst || rs[i-1] > tagLast)) {
				return formatCharacter()
			}
		case unicode.Is(unicode.Cf, r):
			return formatCharacter()
		case unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) && !invisibleLetters[r]:
			visible = true
		}
	}
	if !visible {
		return &ValidationError{Field: "nickname", Reason: "must contain a visible character"}
	}
	return nil
}

func formatCharacter() error {
	return &ValidationError{Field: "nickname", Reason: "must not contain invisible formatting characters (direction overrides, zero-width spaces)"}
}
