// Package jsonread is hookpipe's one JSON reader for webhook bodies: Check validates a body
// without allocating, Decode validates and builds it in the same single pass, and Normalize
// rewrites The City's non-strict JSON into strict bytes for anything that needs them.
//
// Check and Decode accept exactly the same bodies, and report the same error for the others:
//
//   - the body is valid UTF-8, inside strings and everywhere else (ErrNotUTF8);
//   - it is JSON as RFC 8259 defines it or, with Options.Lenient, JSON with The City's
//     documented deviations (below) as well (*SyntaxError);
//   - objects and arrays nest at most Options.MaxDepth deep (a *SyntaxError wrapping ErrTooDeep);
//   - the top-level value is an object (ErrNotObject);
//   - no object has the same key twice, compared after unescaping, so "a" and "\u0061" are one
//     key (*DuplicateKeyError), unless Options.AllowDuplicateKeys. Parsers disagree on which of
//     two values wins, so a body that says two things at once is refused rather than guessed at.
//
// When a body breaks several rules, the first in that list is reported; among syntax errors,
// the first in reading order.
//
// The City documents several webhook bodies produced by Ruby's inspect rather than a JSON
// encoder. Exactly three deviations are accepted, because those are the ones its documented
// examples show:
//
//   - the bare word nil as a value, read as null;
//   - a trailing comma before a closing } or ], ignored;
//   - a missing comma between a complete member value and the next member's key inside an
//     object (`"changed":{...} "group":{...}`).
//
// Anything else is a syntax error carrying the byte offset of the offending input, including a
// missing comma between array elements (`[1 2]`), which no documented example shows and which
// would silently merge two values if it were guessed wrong. A "nil" inside a string stays a
// string.
package jsonread

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxDepth is the nesting limit used when Options.MaxDepth is not set.
const DefaultMaxDepth = 512

// Options says what Check and Decode accept beyond strict JSON.
type Options struct {
	// Lenient accepts The City's documented deviations from JSON (see the package comment).
	Lenient bool
	// AllowDuplicateKeys accepts an object with the same key twice; Decode keeps the last
	// value, like encoding/json.
	AllowDuplicateKeys bool
	// MaxDepth is the deepest nesting of objects and arrays accepted; 0 (or less) means
	// DefaultMaxDepth. The recursion of Decode is bounded by it, so hostile input cannot
	// exhaust the stack.
	MaxDepth int
}

func (o Options) maxDepth() int {
	if o.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return o.MaxDepth
}

// Errors for bodies that are JSON-shaped but refused, and the one a *SyntaxError for nesting
// too deep wraps.
var (
	ErrNotUTF8   = errors.New("jsonread: not valid UTF-8")
	ErrNotObject = errors.New("jsonread: not a JSON object")
	ErrTooDeep   = errors.New("jsonread: nesting too deep")
)

// SyntaxError reports input that is neither JSON nor, when lenient, one of the accepted
// deviations.
type SyntaxError struct {
	// Offset is the byte offset in the input at which the problem was found.
	Offset int
	// Msg says what was found there, e.g. "unexpected 'x'" or "unexpected end of input".
	Msg string
	err error
}

func (e *SyntaxError) Error() string {
	return "jsonread: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns ErrTooDeep for input nested too deep, nil otherwise.
func (e *SyntaxError) Unwrap() error { return e.err }

// DuplicateKeyError names a key found twice in one object.
type DuplicateKeyError struct{ Key string }

func (e *DuplicateKeyError) Error() string {
	key := e.Key
	if len(key) > 64 {
		key = key[:64] + "..."
	}
	return fmt.Sprintf("jsonread: the key %q appears twice in one object", key)
}

// settle gives invalid UTF-8 anywhere in src precedence over any other error. The parsers
// check UTF-8 inside strings as they go and accept only ASCII outside them, so it takes a
// second look only on the error path.
func settle(src []byte, err error) error {
	if err != nil && err != ErrNotUTF8 && !utf8.Valid(src) {
		return ErrNotUTF8
	}
	return err
}

func unexpected(src []byte, i int) error {
	if i >= len(src) {
		return &SyntaxError{Offset: i, Msg: "unexpected end of input"}
	}
	return &SyntaxError{Offset: i, Msg: "unexpected " + quoteByte(src[i])}
}

func tooDeep(i, max int) error {
	return &SyntaxError{Offset: i, Msg: "nesting deeper than " + strconv.Itoa(max), err: ErrTooDeep}
}

func quoteByte(b byte) string {
	if b < utf8.RuneSelf {
		return strconv.QuoteRuneToASCII(rune(b))
	}
	return fmt.Sprintf(`'\x%02x'`, b)
}

func skipWS(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plain marks the bytes a string may hold as they are: everything from 0x20 to 0x7f except
// the quote and the backslash. Control characters must be escaped, and bytes from 0x80 start
// UTF-8 sequences that need a closer look.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// PlainByte reports whether a string holds c as it is, unescaped (see plain).
func PlainByte(c byte) bool { return plain[c] }

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// SpecialWord reports whether any of the eight bytes in w is one a string cannot hold as it
// is: a quote, a backslash, a control character or a byte from 0x80. The writer uses it too,
// to copy plain runs of a string eight bytes at a time.
func SpecialWord(w uint64) bool {
	q := w ^ ones*'"'
	b := w ^ ones*'\\'
	return ((w-ones*0x20)&^w|(q-ones)&^q|(b-ones)&^b|w)&highs != 0
}

// scanString reads the string whose opening quote is at src[i]. It returns the offset just
// past the closing quote and whether the string holds any escape. With checkUTF8 set, bytes
// that are not UTF-8 are ErrNotUTF8; otherwise they pass, as they do in encoding/json.
func scanString(src []byte, i int, checkUTF8 bool) (end int, escaped bool, err error) {
	i++ // opening quote
	for {
		for i+8 <= len(src) && !SpecialWord(binary.LittleEndian.Uint64(src[i:])) {
			i += 8
		}
		for i < len(src) && plain[src[i]] {
			i++
		}
		if i >= len(src) {
			return i, escaped, unexpected(src, i)
		}
		switch c := src[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(src) {
				return i, escaped, unexpected(src, i)
			}
			switch src[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for range 4 {
					if i >= len(src) || !isHex(src[i]) {
						return i, escaped, unexpected(src, i)
					}
					i++
				}
			default:
				return i, escaped, unexpected(src, i)
			}
		case c < 0x20:
			return i, escaped, unexpected(src, i)
		default: // c >= 0x80
			if !checkUTF8 {
				i++
				continue
			}
			r, size := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && size == 1 {
				return i, escaped, ErrNotUTF8
			}
			i += size
		}
	}
}

// IsNumber reports whether s is exactly one JSON number (RFC 8259): an
// optional minus, no leading zeros, digits around a decimal point, an
// optional exponent.
func IsNumber(s string) bool {
	end, ok := numberEnd(s, 0)
	return ok && end == len(s)
}

// scanNumber reads the number starting at src[i] (a '-' or a digit) and returns the offset
// just past it.
func scanNumber(src []byte, i int) (int, error) {
	end, ok := numberEnd(src, i)
	if !ok {
		return end, unexpected(src, end)
	}
	return end, nil
}

// numberEnd returns the offset just past the JSON number starting at src[i]
// and true, or the offset of the first byte that breaks the grammar and false.
func numberEnd[T ~string | ~[]byte](src T, i int) (int, bool) {
	if i < len(src) && src[i] == '-' {
		i++
	}
	if i >= len(src) {
		return i, false
	}
	switch c := src[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i = digits(src, i+1)
	default:
		return i, false
	}
	if i < len(src) && src[i] == '.' {
		i++
		if i >= len(src) || !isDigit(src[i]) {
			return i, false
		}
		i = digits(src, i+1)
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if i >= len(src) || !isDigit(src[i]) {
			return i, false
		}
		i = digits(src, i+1)
	}
	return i, true
}

func digits[T ~string | ~[]byte](src T, i int) int {
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	return i
}

// scanLiteral reads word (true, false or null) at src[i] and returns the offset past it.
func scanLiteral(src []byte, i int, word string) (int, error) {
	for j := 0; j < len(word); j++ {
		if i >= len(src) || src[i] != word[j] {
			return i, unexpected(src, i)
		}
		i++
	}
	return i, nil
}

// isNil reports whether the lenient bare word nil starts at src[i]. A letter after it
// ("nill") is left for the caller to find unexpected.
func isNil(src []byte, i int) bool {
	return i+2 < len(src) && src[i] == 'n' && src[i+1] == 'i' && src[i+2] == 'l'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
