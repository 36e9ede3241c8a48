package jsonread

import (
	"encoding/json"
	"errors"
)

// Normalize returns src as strict JSON (RFC 8259), rewriting The City's deviations: nil
// becomes null, a trailing comma is removed, a missing comma between a member value and the
// next key is inserted right after the value. Strings are never rewritten and whitespace is
// kept as it is. Any JSON value is accepted, not only an object, duplicate keys are left
// alone, and, like encoding/json, the bytes inside strings are not checked for UTF-8.
//
// When src already is valid JSON (exactly when json.Valid(src) holds) it is returned as is:
// the same slice, not a copy, and no allocation. Otherwise a new slice holds the rewritten
// document. Input that needs rewriting may nest at most DefaultMaxDepth deep; strict JSON
// nested deeper is returned as it is, since it needs no rewriting.
func Normalize(src []byte) ([]byte, error) {
	// One pass decides both questions. When the parser records no rewrite it has accepted
	// exactly what json.Valid accepts (FuzzCheck holds it to that); it validates faster and
	// allocates the output only at the first rewrite.
	p := normalizer{src: src}
	if err := p.parse(); err != nil {
		if errors.Is(err, ErrTooDeep) && json.Valid(src) {
			return src, nil
		}
		return nil, err
	}
	if p.out == nil {
		return src, nil
	}
	return append(p.out, src[p.flushed:]...), nil
}

// normalizer validates src and records the rewrites in out. Every rewrite happens at a source
// offset at or after the previous one, so out is built by copying the untouched spans of src
// between rewrites: input with few deviations costs one copy.
type normalizer struct {
	src     []byte
	pos     int
	out     []byte
	flushed int // src[:flushed] is already represented in out
}

func (p *normalizer) parse() error {
	p.pos = skipWS(p.src, 0)
	if err := p.value(0); err != nil {
		return err
	}
	if p.pos = skipWS(p.src, p.pos); p.pos < len(p.src) {
		return unexpected(p.src, p.pos)
	}
	return nil
}

// replace substitutes with for src[from:to].
func (p *normalizer) replace(from, to int, with string) {
	if p.out == nil {
		p.out = make([]byte, 0, len(p.src)+len(p.src)/32+8)
	}
	p.out = append(p.out, p.src[p.flushed:from]...)
	p.out = append(p.out, with...)
	p.flushed = to
}

func (p *normalizer) value(depth int) error {
	src := p.src
	if p.pos >= len(src) {
		return unexpected(src, p.pos)
	}
	var err error
	switch c := src[p.pos]; c {
	case '{':
		return p.object(depth + 1)
	case '[':
		return p.array(depth + 1)
	case '"':
		p.pos, _, err = scanString(src, p.pos, false)
	case 't':
		p.pos, err = scanLiteral(src, p.pos, "true")
	case 'f':
		p.pos, err = scanLiteral(src, p.pos, "false")
	case 'n':
		if isNil(src, p.pos) {
			p.replace(p.pos, p.pos+3, "null")
			p.pos += 3
			return nil
		}
		p.pos, err = scanLiteral(src, p.pos, "null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		p.pos, err = scanNumber(src, p.pos)
	default:
		return unexpected(src, p.pos)
	}
	return err
}

func (p *normalizer) object(depth int) error {
	src := p.src
	if depth > DefaultMaxDepth {
		return tooDeep(p.pos, DefaultMaxDepth)
	}
	p.pos = skipWS(src, p.pos+1)
	if p.pos < len(src) && src[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		if p.pos >= len(src) || src[p.pos] != '"' {
			return unexpected(src, p.pos)
		}
		var err error
		if p.pos, _, err = scanString(src, p.pos, false); err != nil {
			return err
		}
		if p.pos = skipWS(src, p.pos); p.pos >= len(src) || src[p.pos] != ':' {
			return unexpected(src, p.pos)
		}
		p.pos = skipWS(src, p.pos+1)
		if err := p.value(depth); err != nil {
			return err
		}
		valueEnd := p.pos
		if p.pos = skipWS(src, p.pos); p.pos >= len(src) {
			return unexpected(src, p.pos)
		}
		switch src[p.pos] {
		case '}':
			p.pos++
			return nil
		case ',':
			comma := p.pos
			p.pos = skipWS(src, p.pos+1)
			if p.pos < len(src) && src[p.pos] == '}' {
				p.replace(comma, comma+1, "")
				p.pos++
				return nil
			}
		case '"':
			// The next key follows the value without a comma.
			p.replace(valueEnd, valueEnd, ",")
		default:
			return unexpected(src, p.pos)
		}
	}
}

func (p *normalizer) array(depth int) error {
	src := p.src
	if depth > DefaultMaxDepth {
		return tooDeep(p.pos, DefaultMaxDepth)
	}
	p.pos = skipWS(src, p.pos+1)
	if p.pos < len(src) && src[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		if err := p.value(depth); err != nil {
			return err
		}
		if p.pos = skipWS(src, p.pos); p.pos >= len(src) {
			return unexpected(src, p.pos)
		}
		switch src[p.pos] {
		case ']':
			p.pos++
			return nil
		case ',':
			comma := p.pos
			p.pos = skipWS(src, p.pos+1)
			if p.pos < len(src) && src[p.pos] == ']' {
				p.replace(comma, comma+1, "")
				p.pos++
				return nil
			}
		default:
			return unexpected(src, p.pos)
		}
	}
}
