package jsonread

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// nextRune returns the character at raw[i] of a string's content (the bytes between its
// quotes, already checked by scanString with UTF-8 checking) and the offset after it,
// unescaping as encoding/json does: a \u escape of a surrogate that does not pair with the
// \u escape right after it is U+FFFD, and the escape after it is read on its own.
func nextRune(raw []byte, i int) (rune, int) {
	c := raw[i]
	if c != '\\' {
		if c < utf8.RuneSelf {
			return rune(c), i + 1
		}
		r, size := utf8.DecodeRune(raw[i:])
		return r, i + size
	}
	switch raw[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r := hex4(raw[i+2:])
		i += 6
		if !utf16.IsSurrogate(r) {
			return r, i
		}
		if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
			if dec := utf16.DecodeRune(r, hex4(raw[i+2:])); dec != unicode.ReplacementChar {
				return dec, i + 6
			}
		}
		return unicode.ReplacementChar, i
	}
	return rune(raw[i+1]), i + 2 // '"', '\\' or '/'
}

// hex4 is the value of the four hex digits at the start of b.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape appends the unescaped text of a checked string's content to dst.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return append(dst, raw[i:]...)
		}
		dst = append(dst, raw[i:i+j]...)
		var r rune
		r, i = nextRune(raw, i+j)
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// sameText reports whether two checked strings' contents are equal once unescaped.
func sameText(a []byte, aEscaped bool, b []byte, bEscaped bool) bool {
	if !aEscaped && !bEscaped {
		return bytes.Equal(a, b)
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		var ra, rb rune
		ra, i = nextRune(a, i)
		rb, j = nextRune(b, j)
		if ra != rb {
			return false
		}
	}
	return i == len(a) && j == len(b)
}
