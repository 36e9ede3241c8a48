// Package lenientjson turns the not-quite-JSON found in some provider payloads into strict
// JSON (RFC 8259).
//
// The City documents several webhook bodies produced by Ruby's inspect rather than a JSON
// encoder. Exactly three deviations are accepted, because those are the ones its documented
// examples show:
//
//   - the bare word nil as a value, rewritten to null;
//   - a trailing comma before a closing } or ], removed;
//   - a missing comma between a complete member value and the next member's key inside an
//     object (`"changed":{...} "group":{...}`), inserted right after the value.
//
// Anything else is a syntax error carrying the byte offset of the offending input, including a
// missing comma between array elements (`[1 2]`), which no documented example shows and which
// would silently merge two values if it were guessed wrong. Strings are never rewritten (a
// "nil" inside a string stays), and whitespace is kept as it is.
//
// Input that already is valid JSON (as judged by encoding/json) is returned unchanged without
// copying, so the strict path costs one validation pass and no allocation. The parser is a
// recursive descent bounded to MaxDepth levels of nesting, so hostile input can cost neither
// the stack nor more than one output buffer; strict JSON nested deeper than that is still
// accepted as it is, since it needs no rewriting. Like encoding/json, the byte content of
// strings is not checked for UTF-8 validity; decoders replace invalid sequences.
package lenientjson

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays accepted in input that needs
// rewriting. Strict JSON taken by the fast path is bounded by encoding/json's own limit.
const MaxDepth = 512

// SyntaxError reports input that is neither JSON nor one of the accepted deviations.
type SyntaxError struct {
	// Offset is the byte offset in the input at which the problem was found.
	Offset int
	msg    string
	depth  bool
}

func (e *SyntaxError) Error() string {
	return "lenientjson: " + e.msg + " at offset " + strconv.Itoa(e.Offset)
}

// Normalize returns src as strict JSON. When src already is valid JSON (exactly when
// json.Valid(src) holds) it is returned as is: the same slice, not a copy, and no allocation.
// Otherwise a new slice holds the rewritten document.
func Normalize(src []byte) ([]byte, error) {
	// One pass decides both questions. When the parser records no rewrite it has accepted
	// exactly what json.Valid accepts (FuzzNormalize holds it to that); it validates faster
	// (compare BenchmarkNormalizeStrict with BenchmarkJSONValid) and allocates the output
	// only at the first rewrite.
	p := parser{src: src, emit: true}
	if err := p.parse(); err != nil {
		if isDepth(err) && json.Valid(src) {
			return src, nil // strict JSON nested deeper than MaxDepth
		}
		return nil, err
	}
	return p.finish(), nil
}

// Valid reports whether Normalize would accept src.
func Valid(src []byte) bool {
	p := parser{src: src}
	err := p.parse()
	return err == nil || (isDepth(err) && json.Valid(src))
}

// parser validates src and, when emit is set, records the rewrites in out. Every rewrite
// happens at a source offset at or after the previous one, so out is built by copying the
// untouched spans of src between rewrites: input with few deviations costs one copy.
type parser struct {
	src     []byte
	pos     int
	emit    bool
	out     []byte
	flushed int // src[:flushed] is already represented in out
	edits   int
}

func (p *parser) parse() error {
	p.ws()
	if err := p.value(0); err != nil {
		return err
	}
	p.ws()
	if p.pos < len(p.src) {
		return p.unexpected()
	}
	return nil
}

// finish returns the rewritten document.
func (p *parser) finish() []byte {
	if p.edits == 0 {
		return p.src
	}
	return append(p.out, p.src[p.flushed:]...)
}

// replace substitutes with for src[from:to].
func (p *parser) replace(from, to int, with string) {
	p.edits++
	if !p.emit {
		return
	}
	if p.out == nil {
		p.out = make([]byte, 0, len(p.src)+len(p.src)/32+8)
	}
	p.out = append(p.out, p.src[p.flushed:from]...)
	p.out = append(p.out, with...)
	p.flushed = to
}

func (p *parser) ws() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) error {
	if p.pos >= len(p.src) {
		return p.unexpected()
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		if p.pos+2 < len(p.src) && p.src[p.pos+1] == 'i' && p.src[p.pos+2] == 'l' {
			// A following letter ("nill") is caught by the caller as an unexpected byte.
			p.replace(p.pos, p.pos+3, "null")
			p.pos += 3
			return nil
		}
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return p.unexpected()
}

func (p *parser) object(depth int) error {
	if depth > MaxDepth {
		return p.tooDeep()
	}
	p.pos++ // {
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		if err := p.member(depth); err != nil {
			return err
		}
		valueEnd := p.pos
		p.ws()
		if p.pos >= len(p.src) {
			return p.unexpected()
		}
		switch p.src[p.pos] {
		case '}':
			p.pos++
			return nil
		case ',':
			comma := p.pos
			p.pos++
			p.ws()
			if p.pos < len(p.src) && p.src[p.pos] == '}' {
				p.replace(comma, comma+1, "")
				p.pos++
				return nil
			}
		case '"':
			// The next key follows the value without a comma.
			p.replace(valueEnd, valueEnd, ",")
		default:
			return p.unexpected()
		}
	}
}

func (p *parser) member(depth int) error {
	if p.pos >= len(p.src) || p.src[p.pos] != '"' {
		return p.unexpected()
	}
	if err := p.str(); err != nil {
		return err
	}
	p.ws()
	if p.pos >= len(p.src) || p.src[p.pos] != ':' {
		return p.unexpected()
	}
	p.pos++
	p.ws()
	return p.value(depth)
}

func (p *parser) array(depth int) error {
	if depth > MaxDepth {
		return p.tooDeep()
	}
	p.pos++ // [
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		if err := p.value(depth); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.src) {
			return p.unexpected()
		}
		switch p.src[p.pos] {
		case ']':
			p.pos++
			return nil
		case ',':
			comma := p.pos
			p.pos++
			p.ws()
			if p.pos < len(p.src) && p.src[p.pos] == ']' {
				p.replace(comma, comma+1, "")
				p.pos++
				return nil
			}
		default:
			return p.unexpected()
		}
	}
}

func (p *parser) str() error {
	p.pos++ // opening quote
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return nil
		case c == '\\':
			p.pos++
			if p.pos >= len(p.src) {
				return p.unexpected()
			}
			switch p.src[p.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos++
			case 'u':
				p.pos++
				for range 4 {
					if p.pos >= len(p.src) || !isHex(p.src[p.pos]) {
						return p.unexpected()
					}
					p.pos++
				}
			default:
				return p.unexpected()
			}
		case c < 0x20:
			return p.unexpected()
		default:
			p.pos++
		}
	}
	return p.unexpected()
}

func (p *parser) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if p.pos >= len(p.src) || p.src[p.pos] != word[i] {
			return p.unexpected()
		}
		p.pos++
	}
	return nil
}

func (p *parser) number() error {
	if p.src[p.pos] == '-' {
		p.pos++
	}
	if p.pos >= len(p.src) {
		return p.unexpected()
	}
	switch c := p.src[p.pos]; {
	case c == '0':
		p.pos++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return p.unexpected()
	}
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		p.pos++
		if p.pos >= len(p.src) || !isDigit(p.src[p.pos]) {
			return p.unexpected()
		}
		p.digits()
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			p.pos++
		}
		if p.pos >= len(p.src) || !isDigit(p.src[p.pos]) {
			return p.unexpected()
		}
		p.digits()
	}
	return nil
}

func (p *parser) digits() {
	for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
		p.pos++
	}
}

func (p *parser) unexpected() error {
	if p.pos >= len(p.src) {
		return &SyntaxError{Offset: p.pos, msg: "unexpected end of input"}
	}
	return &SyntaxError{Offset: p.pos, msg: "unexpected " + quoteByte(p.src[p.pos])}
}

func (p *parser) tooDeep() error {
	return &SyntaxError{Offset: p.pos, msg: "nesting deeper than " + strconv.Itoa(MaxDepth), depth: true}
}

func isDepth(err error) bool {
	se, ok := err.(*SyntaxError)
	return ok && se.depth
}

func quoteByte(b byte) string {
	if b < utf8.RuneSelf {
		return strconv.QuoteRuneToASCII(rune(b))
	}
	return fmt.Sprintf(`'\x%02x'`, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
