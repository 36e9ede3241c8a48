// Package jsonbody decides whether a webhook body may enter the pipeline: a
// JSON object, valid UTF-8, and no key given twice in one object. Duplicate
// keys are legal in JSON's grammar, but parsers disagree on which value wins,
// so a body that says two things at once is refused rather than guessed at.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/hookpipe/hookpipe/plugins/lenientjson"
)

// Errors returned by Check.
var (
	ErrNotUTF8   = errors.New("body is not valid UTF-8")
	ErrNotJSON   = errors.New("body is not valid JSON")
	ErrNotObject = errors.New("body must be a JSON object")
)

// DuplicateKeyError names a key that appears twice in one object.
type DuplicateKeyError struct{ Key string }

func (e *DuplicateKeyError) Error() string {
	key := e.Key
	if len(key) > 64 {
		key = key[:64] + "..."
	}
	return fmt.Sprintf("body has the key %q twice in one object", key)
}

// Check returns nil for an acceptable body. lenient accepts The City's
// documented non-strict JSON (see package lenientjson).
func Check(body []byte, lenient bool) error {
	if !utf8.Valid(body) {
		return ErrNotUTF8
	}
	if lenient {
		if !lenientjson.Valid(body) {
			return ErrNotJSON
		}
	} else if !json.Valid(body) {
		return ErrNotJSON
	}
	if !startsObject(body) {
		return ErrNotObject
	}
	if key, dup := DuplicateKey(body); dup {
		return &DuplicateKeyError{Key: key}
	}
	return nil
}

func startsObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// smallObject is how many keys an object may have before its keys are
// tracked in a map instead of compared pairwise.
const smallObject = 64

type object struct {
	keys [][]byte // the first smallObject keys, pointing into the body
	set  map[string]struct{}
}

func (o *object) add(k []byte) bool {
	if o.set != nil {
		if _, dup := o.set[string(k)]; dup {
			return false
		}
		o.set[string(k)] = struct{}{}
		return true
	}
	for _, seen := range o.keys {
		if bytes.Equal(seen, k) {
			return false
		}
	}
	if len(o.keys) < smallObject {
		o.keys = append(o.keys, k)
		return true
	}
	o.set = make(map[string]struct{}, 2*smallObject)
	for _, seen := range o.keys {
		o.set[string(seen)] = struct{}{}
	}
	o.set[string(k)] = struct{}{}
	return true
}

// DuplicateKey reports the first key found twice within one object of a
// syntactically valid (strict or lenient) JSON document. Keys are compared
// after unescaping, so "a" and "\u0061" are the same key.
func DuplicateKey(b []byte) (string, bool) {
	// containers[i] is nil for an array, the object's keys otherwise.
	var containers []*object
	var free []*object
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			var o *object
			if n := len(free); n > 0 {
				o, free = free[n-1], free[:n-1]
				o.keys, o.set = o.keys[:0], nil
			} else {
				o = &object{keys: make([][]byte, 0, 16)}
			}
			containers = append(containers, o)
		case '[':
			containers = append(containers, nil)
		case '}', ']':
			if n := len(containers); n > 0 {
				if o := containers[n-1]; o != nil {
					free = append(free, o)
				}
				containers = containers[:n-1]
			}
		case '"':
			end := stringEnd(b, i)
			if end < 0 {
				return "", false
			}
			if n := len(containers); n > 0 && containers[n-1] != nil && followedByColon(b, end+1) {
				key := keyText(b[i : end+1])
				if !containers[n-1].add(key) {
					return string(key), true
				}
			}
			i = end
		}
	}
	return "", false
}

// stringEnd returns the index of the quote closing the string opened at i.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

func followedByColon(b []byte, i int) bool {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

// keyText is the key's text, unescaped when it holds escapes.
func keyText(quoted []byte) []byte {
	raw := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var s string
	if json.Unmarshal(quoted, &s) == nil {
		return []byte(s)
	}
	return raw
}
