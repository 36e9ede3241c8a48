package jsonread

import (
	"encoding/json"
	"sync"
)

// Decode reads the object in src under the same rules as Check, in the same single pass that
// builds it, and returns the same error as Check for any body Check refuses.
//
// Values are what encoding/json's Decoder with UseNumber gives for the same (strict)
// document: map[string]any, []any, string, json.Number (the number's text as written), bool
// and nil; The City's nil is nil. Strings without escapes share one copy of src, made once,
// instead of one allocation each: a string kept from the result keeps that copy alive.
func Decode(src []byte, opt Options) (map[string]any, error) {
	i := skipWS(src, 0)
	if i >= len(src) || src[i] != '{' {
		// Not an object: Check tells ErrNotObject from a syntax error.
		return nil, Check(src, opt)
	}
	d := decoders.Get().(*decoder)
	d.src, d.text = src, string(src)
	d.pos = i
	d.lenient, d.allowDup, d.maxDepth = opt.Lenient, opt.AllowDuplicateKeys, opt.maxDepth()
	d.dupAt = -1

	m, err := d.object(1)
	if err == nil {
		if d.pos = skipWS(src, d.pos); d.pos < len(src) {
			err = unexpected(src, d.pos)
		} else if d.dupAt >= 0 {
			err = &DuplicateKeyError{Key: d.dupKey}
		}
	}
	d.release()
	if err != nil {
		return nil, settle(src, err)
	}
	return m, nil
}

// A decoder is reused across calls so that its scratch stacks stop growing after the first
// few bodies.
var decoders = sync.Pool{New: func() any { return new(decoder) }}

type member struct {
	key   string
	value any
	at    int // the key's offset, to report the first duplicate in reading order
}

type decoder struct {
	src  []byte
	text string // src as a string: strings without escapes are slices of it
	pos  int

	lenient, allowDup bool
	maxDepth          int

	// Members and elements of the open objects and arrays, innermost last: a container is
	// built at its end, when its size is known.
	members  []member
	elements []any
	buf      []byte // unescaping

	dupAt  int // offset of the first duplicate key, -1 for none
	dupKey string
}

func (d *decoder) release() {
	clear(d.members)
	clear(d.elements)
	d.members, d.elements, d.buf = d.members[:0], d.elements[:0], d.buf[:0]
	d.src, d.text, d.dupKey = nil, "", ""
	// A body with huge containers must not pin their scratch space for good.
	if cap(d.members) > 1<<12 || cap(d.elements) > 1<<12 || cap(d.buf) > 1<<16 {
		return
	}
	decoders.Put(d)
}

// value reads the value at d.pos, which is past any whitespace; depth is the nesting of the
// container holding it.
func (d *decoder) value(depth int) (any, error) {
	src := d.src
	if d.pos >= len(src) {
		return nil, unexpected(src, d.pos)
	}
	var err error
	switch c := src[d.pos]; c {
	case '{':
		m, err := d.object(depth + 1)
		if err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		return d.array(depth + 1)
	case '"':
		s, err := d.str()
		return s, err
	case 't':
		d.pos, err = scanLiteral(src, d.pos, "true")
		return true, err
	case 'f':
		d.pos, err = scanLiteral(src, d.pos, "false")
		return false, err
	case 'n':
		if d.lenient && isNil(src, d.pos) {
			d.pos += 3
			return nil, nil
		}
		d.pos, err = scanLiteral(src, d.pos, "null")
		return nil, err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		start := d.pos
		if d.pos, err = scanNumber(src, d.pos); err != nil {
			return nil, err
		}
		return json.Number(d.text[start:d.pos]), nil
	}
	return nil, unexpected(src, d.pos)
}

// object reads the object whose '{' is at d.pos, nested depth deep.
func (d *decoder) object(depth int) (map[string]any, error) {
	src := d.src
	if depth > d.maxDepth {
		return nil, tooDeep(d.pos, d.maxDepth)
	}
	d.pos = skipWS(src, d.pos+1)
	if d.pos < len(src) && src[d.pos] == '}' {
		d.pos++
		return map[string]any{}, nil
	}
	base := len(d.members)
	for {
		if d.pos >= len(src) || src[d.pos] != '"' {
			return nil, unexpected(src, d.pos)
		}
		at := d.pos
		key, err := d.str()
		if err != nil {
			return nil, err
		}
		if d.pos = skipWS(src, d.pos); d.pos >= len(src) || src[d.pos] != ':' {
			return nil, unexpected(src, d.pos)
		}
		d.pos = skipWS(src, d.pos+1)
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.members = append(d.members, member{key: key, value: v, at: at})

		if d.pos = skipWS(src, d.pos); d.pos >= len(src) {
			return nil, unexpected(src, d.pos)
		}
		switch src[d.pos] {
		case '}':
			d.pos++
			return d.buildObject(base), nil
		case ',':
			d.pos = skipWS(src, d.pos+1)
			if d.lenient && d.pos < len(src) && src[d.pos] == '}' {
				d.pos++ // a trailing comma
				return d.buildObject(base), nil
			}
		case '"':
			if !d.lenient {
				return nil, unexpected(src, d.pos)
			}
			// The next key, with no comma before it.
		default:
			return nil, unexpected(src, d.pos)
		}
	}
}

func (d *decoder) buildObject(base int) map[string]any {
	ms := d.members[base:]
	m := make(map[string]any, len(ms))
	for _, mb := range ms {
		n := len(m)
		m[mb.key] = mb.value
		if len(m) == n && !d.allowDup && (d.dupAt < 0 || mb.at < d.dupAt) {
			d.dupAt, d.dupKey = mb.at, mb.key
		}
	}
	clear(ms)
	d.members = d.members[:base]
	return m
}

// array reads the array whose '[' is at d.pos, nested depth deep.
func (d *decoder) array(depth int) (any, error) {
	src := d.src
	if depth > d.maxDepth {
		return nil, tooDeep(d.pos, d.maxDepth)
	}
	d.pos = skipWS(src, d.pos+1)
	if d.pos < len(src) && src[d.pos] == ']' {
		d.pos++
		return []any{}, nil
	}
	base := len(d.elements)
	for {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.elements = append(d.elements, v)

		if d.pos = skipWS(src, d.pos); d.pos >= len(src) {
			return nil, unexpected(src, d.pos)
		}
		switch src[d.pos] {
		case ']':
			d.pos++
			return d.buildArray(base), nil
		case ',':
			d.pos = skipWS(src, d.pos+1)
			if d.lenient && d.pos < len(src) && src[d.pos] == ']' {
				d.pos++ // a trailing comma
				return d.buildArray(base), nil
			}
		default:
			return nil, unexpected(src, d.pos)
		}
	}
}

func (d *decoder) buildArray(base int) []any {
	es := d.elements[base:]
	a := make([]any, len(es))
	copy(a, es)
	clear(es)
	d.elements = d.elements[:base]
	return a
}

// str reads the string whose opening quote is at d.pos.
func (d *decoder) str() (string, error) {
	start := d.pos
	end, escaped, err := scanString(d.src, start, true)
	if err != nil {
		return "", err
	}
	d.pos = end
	if !escaped {
		return d.text[start+1 : end-1], nil
	}
	d.buf = unescape(d.buf[:0], d.src[start+1:end-1])
	return string(d.buf), nil
}
