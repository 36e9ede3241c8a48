// Package jsonwrite serializes a structured message the way the engine does
// (encoding/json with HTML escaping off: object keys sorted, numbers as
// written, invalid UTF-8 replaced), byte for byte, without reflection. The
// outputs use it for the envelope, which they would otherwise have the engine
// encode with encoding/json on every write.
package jsonwrite

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/hookpipe/hookpipe/plugins/jsonread"
)

// Content is the message's content as bytes: as stored when it has bytes,
// else its structured value encoded by Append. What Append cannot encode the
// engine encodes, with the engine's own result.
func Content(msg *service.Message) ([]byte, error) {
	if msg.HasBytes() || !msg.HasStructured() {
		return msg.AsBytes()
	}
	// Room for a typical envelope, so the buffer rarely grows.
	b, _, err := AppendContent(make([]byte, 0, 2048), msg)
	return b, err
}

// AppendContent is Content for a caller that reuses buffers: a structured
// value is encoded by Append onto dst, and encoded is true. Otherwise the
// result is the message's own bytes (or the engine's encoding of what Append
// cannot encode), dst is untouched, and encoded is false.
func AppendContent(dst []byte, msg *service.Message) (b []byte, encoded bool, err error) {
	if msg.HasBytes() || !msg.HasStructured() {
		b, err = msg.AsBytes()
		return b, false, err
	}
	v, err := msg.AsStructured()
	if err != nil {
		return nil, false, err
	}
	if b, err := Append(dst, v); err == nil {
		return b, true, nil
	}
	b, err = msg.AsBytes()
	return b, false, err
}

// ErrUnsupported is returned for a value encoding/json refuses: NaN or an
// infinity, or a json.Number that is not a number.
var ErrUnsupported = errors.New("value has no JSON encoding")

// Append appends the JSON encoding of v to dst: the bytes encoding/json's
// Encoder gives with SetEscapeHTML(false), without its trailing newline.
func Append(dst []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, t), nil
	case map[string]any:
		if t == nil {
			return append(dst, "null"...), nil
		}
		return appendObject(dst, t)
	case []any:
		if t == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = Append(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case json.Number:
		if t == "" {
			return append(dst, '0'), nil
		}
		if !jsonread.IsNumber(string(t)) {
			return nil, ErrUnsupported
		}
		return append(dst, t...), nil
	case bool:
		return strconv.AppendBool(dst, t), nil
	case int64:
		return strconv.AppendInt(dst, t, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(t), 10), nil
	case uint64:
		return strconv.AppendUint(dst, t, 10), nil
	case float64:
		return appendFloat(dst, t, 64)
	case float32:
		return appendFloat(dst, float64(t), 32)
	case []byte:
		if t == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, t)
		return append(dst, '"'), nil
	}
	// Anything else (timestamps, typed maps and slices) is rare in a
	// message: encoding/json itself encodes it.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...), nil
}

// member is an object member, gathered so that sorting by key needs no
// second lookup of each value.
type member struct {
	key   string
	value any
}

func appendObject(dst []byte, m map[string]any) ([]byte, error) {
	var stack [32]member
	members := stack[:0]
	for k, v := range m {
		members = append(members, member{k, v})
	}
	sortMembers(members)
	dst = append(dst, '{')
	for i, mb := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, mb.key)
		dst = append(dst, ':')
		var err error
		if dst, err = Append(dst, mb.value); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// sortMembers orders members by key. Objects in webhooks are small (tens of
// members); for them a binary insertion sort with the comparison inlined
// takes a third fewer instructions than a generic sort calling a comparison
// function.
func sortMembers(ms []member) {
	if len(ms) > 64 {
		slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
		return
	}
	for i := 1; i < len(ms); i++ {
		m := ms[i]
		if !keyLess(m.key, ms[i-1].key) {
			continue
		}
		lo, hi := 0, i-1 // m goes before ms[hi]
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if keyLess(m.key, ms[mid].key) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		copy(ms[lo+1:i+1], ms[lo:i])
		ms[lo] = m
	}
}

// keyLess is a < b, deciding on the first byte where it can: most keys of
// an object differ there, and the full comparison is a function call.
func keyLess(a, b string) bool {
	if len(a) > 0 && len(b) > 0 && a[0] != b[0] {
		return a[0] < b[0]
	}
	return a < b
}

const hexDigits = "0123456789abcdef"

// appendString quotes s: `"` and `\` escaped, control characters as \n, \r,
// \t, \b, \f or \u00XX, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none of them needs a look.
		for ; i+8 <= len(s); i += 8 {
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			if jsonread.SpecialWord(x) {
				break
			}
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonread.PlainByte(c) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(dst, s[start:]...), '"')
}

// appendFloat writes f as ECMAScript does, which is what encoding/json
// follows: plain decimals from 1e-6 up to 1e21, exponents outside, and the
// exponent without a leading zero.
func appendFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, ErrUnsupported
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 becomes 1e-7.
		if n := len(dst); n-start >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}
