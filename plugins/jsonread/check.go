package jsonread

import "encoding/binary"

// Check returns nil when src is acceptable under opt (see the package comment) and the
// reason otherwise. It reads src once and, for bodies nested no deeper than 32 levels whose
// open objects hold no more than 64 keys between them, allocates nothing.
func Check(src []byte, opt Options) error {
	return settle(src, check(src, opt))
}

// smallObject is how many keys an object may have before its keys are tracked in a set
// instead of compared pairwise.
const smallObject = 64

// keySpan is a key of an open object: its content in src, between the quotes.
type keySpan struct {
	start, end int
	// fp is a fingerprint of the content that rules most unequal keys out in one
	// comparison; 0 when the key holds escapes and must be compared unescaped.
	fp uint64
}

type frame struct {
	object bool
	keys   int                 // where this object's keys start on the key stack
	set    map[string]struct{} // the object's keys once it has more than smallObject
}

// States of check's loop: what the next token must be.
const (
	wantValue = iota
	wantKey
	wantNext // a value has ended: a separator, a closing bracket or the end of input
)

// check is an explicit-stack parser: one function whose stacks start in local arrays, so
// validating a typical body neither recurses nor allocates.
func check(src []byte, opt Options) error {
	maxDepth := opt.maxDepth()
	var frameBuf [32]frame
	stack := frameBuf[:0]
	var keyBuf [smallObject]keySpan
	keys := keyBuf[:0]
	var dup error

	n := len(src)
	i := skipWS(src, 0)
	notObject := i < n && src[i] != '{'
	checkDup := !opt.AllowDuplicateKeys && !notObject // a non-object is refused anyway
	state := wantValue
	for {
		switch state {
		case wantValue:
			if i >= n {
				return unexpected(src, i)
			}
			var err error
			switch c := src[i]; c {
			case '{', '[':
				if len(stack) >= maxDepth {
					return tooDeep(i, maxDepth)
				}
				closer := byte(']')
				if c == '{' {
					closer = '}'
				}
				stack = append(stack, frame{object: c == '{', keys: len(keys)})
				i = skipWS(src, i+1)
				if i < n && src[i] == closer {
					i++
					stack = stack[:len(stack)-1]
					state = wantNext
				} else if c == '{' {
					state = wantKey
				}
				continue
			case '"':
				i, _, err = scanString(src, i, true)
			case 't':
				i, err = scanLiteral(src, i, "true")
			case 'f':
				i, err = scanLiteral(src, i, "false")
			case 'n':
				if opt.Lenient && isNil(src, i) {
					i += 3
				} else {
					i, err = scanLiteral(src, i, "null")
				}
			case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				i, err = scanNumber(src, i)
			default:
				return unexpected(src, i)
			}
			if err != nil {
				return err
			}
			state = wantNext

		case wantKey:
			if i >= n || src[i] != '"' {
				return unexpected(src, i)
			}
			end, escaped, err := scanString(src, i, true)
			if err != nil {
				return err
			}
			if checkDup && dup == nil {
				f := &stack[len(stack)-1]
				k := keySpan{start: i + 1, end: end - 1}
				if !escaped {
					k.fp = fingerprint(src[k.start:k.end])
				}
				keys, dup = addKey(src, f, keys, k)
			}
			i = skipWS(src, end)
			if i >= n || src[i] != ':' {
				return unexpected(src, i)
			}
			i = skipWS(src, i+1)
			state = wantValue

		case wantNext:
			if len(stack) == 0 {
				if i = skipWS(src, i); i < n {
					return unexpected(src, i)
				}
				if notObject {
					return ErrNotObject
				}
				return dup
			}
			if i = skipWS(src, i); i >= n {
				return unexpected(src, i)
			}
			f := &stack[len(stack)-1]
			closer := byte(']')
			if f.object {
				closer = '}'
			}
			switch c := src[i]; {
			case c == closer:
				i++
				keys = keys[:f.keys]
				stack = stack[:len(stack)-1]
			case c == ',':
				i = skipWS(src, i+1)
				if opt.Lenient && i < n && src[i] == closer {
					// A trailing comma.
					i++
					keys = keys[:f.keys]
					stack = stack[:len(stack)-1]
				} else if f.object {
					state = wantKey
				} else {
					state = wantValue
				}
			case c == '"' && f.object && opt.Lenient:
				// The next key, with no comma before it.
				state = wantKey
			default:
				return unexpected(src, i)
			}
		}
	}
}

// addKey records key k of the innermost open object f, whose keys so far are keys[f.keys:]
// or, past smallObject of them, f.set. It returns the key stack and, when k was already
// there, the error naming it.
func addKey(src []byte, f *frame, keys []keySpan, k keySpan) ([]keySpan, error) {
	text := src[k.start:k.end]
	if f.set != nil {
		var s string
		if k.fp == 0 {
			s = string(unescape(nil, text))
		} else if _, ok := f.set[string(text)]; ok { // no allocation for the lookup
			return keys, &DuplicateKeyError{Key: string(text)}
		} else {
			s = string(text)
		}
		if _, ok := f.set[s]; ok {
			return keys, &DuplicateKeyError{Key: s}
		}
		f.set[s] = struct{}{}
		return keys, nil
	}
	for _, seen := range keys[f.keys:] {
		if seen.fp != k.fp && seen.fp != 0 && k.fp != 0 {
			continue
		}
		if sameText(src[seen.start:seen.end], seen.fp == 0, text, k.fp == 0) {
			return keys, &DuplicateKeyError{Key: keyString(text, k.fp == 0)}
		}
	}
	if len(keys)-f.keys < smallObject {
		return append(keys, k), nil
	}
	f.set = make(map[string]struct{}, 4*smallObject)
	for _, seen := range keys[f.keys:] {
		f.set[keyString(src[seen.start:seen.end], seen.fp == 0)] = struct{}{}
	}
	f.set[keyString(text, k.fp == 0)] = struct{}{}
	return keys[:f.keys], nil
}

func keyString(text []byte, escaped bool) string {
	if escaped {
		return string(unescape(nil, text))
	}
	return string(text)
}

// fingerprint mixes a key's length with its first and last eight bytes: field names that
// differ mostly differ there. It is never 0.
func fingerprint(k []byte) uint64 {
	var h uint64
	if n := len(k); n >= 8 {
		h = binary.LittleEndian.Uint64(k) ^ binary.LittleEndian.Uint64(k[n-8:])*0x9e3779b97f4a7c15
	} else {
		for _, c := range k {
			h = h<<8 | uint64(c)
		}
	}
	return h ^ uint64(len(k))*0xff51afd7ed558ccd | 1
}
