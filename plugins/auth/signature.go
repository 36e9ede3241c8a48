package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Signature algorithms.
const (
	AlgHMACSHA1   = "hmac_sha1"
	AlgHMACSHA256 = "hmac_sha256"
	AlgHMACSHA512 = "hmac_sha512"
	AlgEd25519    = "ed25519"
)

// How the signature header is laid out.
const (
	// FormatPlain: the header is one signature, after an optional prefix
	// (GitHub's "sha256=<hex>").
	FormatPlain = "plain"
	// FormatCommaList: space-separated "<version>,<signature>" items
	// (Standard Webhooks' "v1,<b64> v1a,<b64>").
	FormatCommaList = "comma_list"
	// FormatKeyValue: comma-separated "<key>=<value>" pairs holding a
	// timestamp and one or more signatures (Stripe's "t=...,v1=...,v1=...").
	FormatKeyValue = "key_value"
)

// How a configured secret becomes key bytes.
const (
	// SecretRaw uses the secret's bytes as written.
	SecretRaw = "raw"
	// SecretBase64 base64-decodes the secret after removing a Standard
	// Webhooks "whsec_" or "whpk_" prefix.
	SecretBase64 = "base64"
)

// DefaultTolerance is how far a signed timestamp may be from the receiver's
// clock, either way, when no tolerance is configured.
const DefaultTolerance = 5 * time.Minute

// maxSignatures bounds the signatures one header may offer, so a crafted
// header cannot make a request cost thousands of MAC or ed25519 checks.
const maxSignatures = 16

// Signature is a declarative signature check: which header carries the
// signature and how it is laid out, which bytes were signed, with which
// algorithm and keys, and how fresh the signed timestamp must be. The presets
// (standard_webhooks, github, stripe) are configurations of it.
//
// The MAC is computed over the raw body exactly as received, compared in
// constant time against every presented signature under every active secret,
// and a signed timestamp outside Tolerance (stale or in the future) fails,
// which is the replay protection.
type Signature struct {
	Header    string
	Format    string
	Prefix    string // required in front of each signature, removed before decoding
	Version   string // the label a signature must carry in comma_list and key_value
	Algorithm string
	Encoding  string // of the signature: hex or base64
	// Payload is what was signed: literal text, the body and header values.
	Payload         []PayloadPart
	Keys            [][]byte // HMAC keys, or ed25519 public keys
	TimestampHeader string   // a header holding the signed Unix time
	TimestampKey    string   // the key_value key holding it (Stripe's "t")
	Tolerance       time.Duration
	// IDHeader names a header every delivery must carry: the sender's
	// delivery id, which a processor reads from metadata as the event id.
	IDHeader string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	newHash func() hash.Hash
}

// PayloadPart is one piece of the signed payload.
type PayloadPart struct {
	Kind  PartKind
	Value string // the literal text, or the header name
}

// PartKind says what a PayloadPart stands for.
type PartKind int

// Kinds of payload parts.
const (
	PartLiteral PartKind = iota
	PartBody
	PartHeader
	PartTimestamp
)

// SignatureConfig is a Signature before validation, as written in a config
// (after a preset has filled what the config left empty).
type SignatureConfig struct {
	Header          string
	Format          string
	Prefix          string
	Version         string
	Algorithm       string
	Encoding        string
	SignedPayload   string
	SecretEncoding  string
	Secrets         []string
	TimestampHeader string
	TimestampKey    string
	Tolerance       time.Duration
	IDHeader        string
}

// NewSignature validates a signature configuration. Its errors name the
// field at fault and never contain a secret.
func NewSignature(c SignatureConfig) (*Signature, error) {
	s := &Signature{
		Header:          strings.TrimSpace(c.Header),
		Format:          c.Format,
		Prefix:          c.Prefix,
		Version:         c.Version,
		Algorithm:       c.Algorithm,
		Encoding:        c.Encoding,
		TimestampHeader: strings.TrimSpace(c.TimestampHeader),
		TimestampKey:    c.TimestampKey,
		Tolerance:       c.Tolerance,
		IDHeader:        strings.TrimSpace(c.IDHeader),
	}
	if s.Header == "" {
		return nil, errors.New("signature: header is empty (set it, or pick a preset)")
	}
	if s.Format == "" {
		s.Format = FormatPlain
	}
	if s.Algorithm == "" {
		s.Algorithm = AlgHMACSHA256
	}
	switch s.Algorithm {
	case AlgHMACSHA1:
		s.newHash = sha1.New
	case AlgHMACSHA256:
		s.newHash = sha256.New
	case AlgHMACSHA512:
		s.newHash = sha512.New
	case AlgEd25519:
	default:
		return nil, fmt.Errorf("signature: unknown algorithm %q (want %s, %s, %s or %s)", s.Algorithm, AlgHMACSHA1, AlgHMACSHA256, AlgHMACSHA512, AlgEd25519)
	}
	if s.Encoding == "" {
		s.Encoding = "hex"
	}
	if s.Encoding != "hex" && s.Encoding != "base64" {
		return nil, fmt.Errorf("signature: unknown encoding %q (want hex or base64)", s.Encoding)
	}
	tmpl := c.SignedPayload
	if tmpl == "" {
		tmpl = "{body}"
	}
	var err error
	if s.Payload, err = ParseSignedPayload(tmpl); err != nil {
		return nil, err
	}
	switch s.Format {
	case FormatPlain:
		if s.TimestampKey != "" {
			return nil, errors.New("signature: timestamp_key only applies to format key_value")
		}
	case FormatCommaList:
		if s.Version == "" {
			s.Version = "v1"
			if s.Algorithm == AlgEd25519 {
				s.Version = "v1a"
			}
		}
		if s.TimestampKey != "" {
			return nil, errors.New("signature: timestamp_key only applies to format key_value")
		}
	case FormatKeyValue:
		if s.Version == "" {
			s.Version = "v1"
		}
		// Stripe's "t", when the signed payload asks for a timestamp and
		// no header gives one.
		if s.TimestampKey == "" && s.TimestampHeader == "" && s.hasPart(PartTimestamp) {
			s.TimestampKey = "t"
		}
		if s.TimestampKey == s.Version {
			return nil, errors.New("signature: timestamp_key and version must differ")
		}
	default:
		return nil, fmt.Errorf("signature: unknown format %q (want %s, %s or %s)", s.Format, FormatPlain, FormatCommaList, FormatKeyValue)
	}
	if strings.ContainsAny(s.Version, " ,=") {
		return nil, fmt.Errorf("signature: version %q may not contain spaces, commas or '='", s.Version)
	}
	if s.TimestampHeader != "" && s.TimestampKey != "" {
		return nil, errors.New("signature: set timestamp_header or timestamp_key, not both")
	}
	if s.Tolerance == 0 {
		s.Tolerance = DefaultTolerance
	}
	if s.Tolerance < 0 {
		return nil, errors.New("signature: tolerance must be positive")
	}

	hasTimestamp := s.TimestampHeader != "" || s.TimestampKey != ""
	if s.signsTimestamp() && !hasTimestamp {
		return nil, errors.New("signature: signed_payload uses {timestamp} but neither timestamp_header nor timestamp_key is set")
	}
	// A timestamp outside the signed bytes could be replaced at will, so
	// checking it would protect nothing.
	if hasTimestamp && !s.signsTimestamp() {
		return nil, errors.New("signature: the timestamp is not part of signed_payload, so it cannot protect against replays (add {timestamp} to signed_payload, or drop timestamp_header / timestamp_key)")
	}

	enc := c.SecretEncoding
	if enc == "" {
		enc = SecretRaw
	}
	if enc != SecretRaw && enc != SecretBase64 {
		return nil, fmt.Errorf("signature: unknown secret_encoding %q (want %s or %s)", enc, SecretRaw, SecretBase64)
	}
	for i, secret := range c.Secrets {
		if secret == "" {
			continue // an unset optional variable, e.g. ${X_PREVIOUS:}
		}
		key := []byte(secret)
		if enc == SecretBase64 {
			if key, err = decodeSecret(secret); err != nil {
				return nil, fmt.Errorf("signature: secrets[%d] is not base64 (after an optional whsec_ or whpk_ prefix)", i)
			}
		}
		if s.Algorithm == AlgEd25519 && len(key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("signature: secrets[%d] is not an ed25519 public key (%d bytes, want %d)", i, len(key), ed25519.PublicKeySize)
		}
		if len(key) == 0 {
			return nil, fmt.Errorf("signature: secrets[%d] decodes to no bytes", i)
		}
		s.Keys = append(s.Keys, key)
	}
	if len(s.Keys) == 0 {
		return nil, errors.New("signature: no secret is set (is the environment variable empty?)")
	}
	return s, nil
}

func (s *Signature) signsTimestamp() bool {
	if s.hasPart(PartTimestamp) {
		return true
	}
	for _, p := range s.Payload {
		if p.Kind == PartHeader && s.TimestampHeader != "" && strings.EqualFold(p.Value, s.TimestampHeader) {
			return true
		}
	}
	return false
}

func (s *Signature) hasPart(k PartKind) bool {
	for _, p := range s.Payload {
		if p.Kind == k {
			return true
		}
	}
	return false
}

// ParseSignedPayload reads a signed_payload template: literal text with the
// placeholders {body} (the raw body), {header:<name>} (a request header's
// value) and {timestamp} or its short form {t} (the signed timestamp, from
// timestamp_header or the key_value timestamp key).
func ParseSignedPayload(tmpl string) ([]PayloadPart, error) {
	var parts []PayloadPart
	rest := tmpl
	bodies := 0
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			parts = append(parts, PayloadPart{Kind: PartLiteral, Value: rest})
			break
		}
		if rest[open] == '}' {
			return nil, fmt.Errorf("signature: signed_payload %q has a '}' without '{'", tmpl)
		}
		if open > 0 {
			parts = append(parts, PayloadPart{Kind: PartLiteral, Value: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("signature: signed_payload %q has an unclosed '{'", tmpl)
		}
		name := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		switch {
		case name == "body":
			bodies++
			parts = append(parts, PayloadPart{Kind: PartBody})
		case name == "timestamp" || name == "t":
			parts = append(parts, PayloadPart{Kind: PartTimestamp})
		case strings.HasPrefix(name, "header:") && strings.TrimSpace(name[len("header:"):]) != "":
			parts = append(parts, PayloadPart{Kind: PartHeader, Value: strings.TrimSpace(name[len("header:"):])})
		default:
			return nil, fmt.Errorf("signature: signed_payload %q has an unknown placeholder {%s} (want {body}, {timestamp}, {t} or {header:<name>})", tmpl, name)
		}
	}
	// A signature that does not cover the body authenticates nothing the
	// pipeline reads.
	if bodies != 1 {
		return nil, fmt.Errorf("signature: signed_payload %q must contain {body} exactly once", tmpl)
	}
	return parts, nil
}

func decodeSecret(s string) ([]byte, error) {
	for _, p := range []string{"whsec_", "whpk_"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	return decodeBase64(s)
}

func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// Verify implements Verifier. A missing signature, timestamp or signed
// header is ErrMissingCredentials; anything else that does not verify is
// ErrBadCredentials, wrapped with a reason that names no secret and repeats
// no header value.
func (s *Signature) Verify(r Request) error {
	raw := strings.TrimSpace(r.Header(s.Header))
	if raw == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingCredentials, s.Header)
	}
	if s.IDHeader != "" && strings.TrimSpace(r.Header(s.IDHeader)) == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingCredentials, s.IDHeader)
	}
	var candidates []string
	var ts string
	var err error
	switch s.Format {
	case FormatCommaList:
		candidates, err = ParseCommaList(raw, s.Version)
	case FormatKeyValue:
		ts, candidates, err = ParseKeyValue(raw, s.TimestampKey, s.Version)
	default:
		candidates = []string{raw}
	}
	if err != nil {
		return fmt.Errorf("%w: %s header: %v", ErrBadCredentials, s.Header, err)
	}
	if s.TimestampHeader != "" {
		if ts = strings.TrimSpace(r.Header(s.TimestampHeader)); ts == "" {
			return fmt.Errorf("%w: no %s header", ErrMissingCredentials, s.TimestampHeader)
		}
	} else if s.TimestampKey != "" && ts == "" {
		return fmt.Errorf("%w: %s header has no %s= timestamp", ErrMissingCredentials, s.Header, s.TimestampKey)
	}

	// Gather the signed bytes before judging anything, so a missing header
	// reads as missing credentials rather than a bad signature.
	parts := make([][]byte, len(s.Payload))
	for i, p := range s.Payload {
		switch p.Kind {
		case PartLiteral:
			parts[i] = []byte(p.Value)
		case PartBody:
			parts[i] = r.Body
		case PartTimestamp:
			parts[i] = []byte(ts)
		case PartHeader:
			v := r.Header(p.Value)
			if v == "" {
				return fmt.Errorf("%w: no %s header", ErrMissingCredentials, p.Value)
			}
			parts[i] = []byte(v)
		}
	}

	if ts != "" {
		sec, ok := parseUnixSeconds(ts)
		if !ok {
			return fmt.Errorf("%w: timestamp is not Unix seconds", ErrBadCredentials)
		}
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		// Compare in seconds so absurd timestamps cannot overflow a Duration.
		limit := int64(s.Tolerance / time.Second)
		switch d := now().Unix() - sec; {
		case d > limit:
			return fmt.Errorf("%w: timestamp is older than the %s tolerance", ErrBadCredentials, s.Tolerance)
		case d < -limit:
			return fmt.Errorf("%w: timestamp is more than %s in the future", ErrBadCredentials, s.Tolerance)
		}
	}

	presented := make([][]byte, 0, len(candidates))
	for _, c := range candidates {
		v, ok := strings.CutPrefix(c, s.Prefix)
		if !ok {
			continue
		}
		if b, ok := s.decode(v); ok {
			presented = append(presented, b)
		}
	}
	if len(presented) == 0 {
		return fmt.Errorf("%w: no well-formed %s signature in %s", ErrBadCredentials, s.Algorithm, s.Header)
	}
	if s.match(parts, presented) {
		return nil
	}
	return fmt.Errorf("%w: signature does not match", ErrBadCredentials)
}

// match checks every presented signature against every key without
// stopping at the first match, so timing tells only how many there are.
func (s *Signature) match(parts [][]byte, presented [][]byte) bool {
	ok := 0
	if s.Algorithm == AlgEd25519 {
		msg := make([]byte, 0, payloadLen(parts))
		for _, p := range parts {
			msg = append(msg, p...)
		}
		for _, key := range s.Keys {
			for _, sig := range presented {
				if len(sig) == ed25519.SignatureSize && ed25519.Verify(ed25519.PublicKey(key), msg, sig) {
					ok = 1
				}
			}
		}
		return ok == 1
	}
	for _, key := range s.Keys {
		want := s.mac(key, parts)
		for _, sig := range presented {
			if hmac.Equal(want, sig) {
				ok = 1
			}
		}
	}
	return ok == 1
}

func payloadLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// mac streams the parts into the MAC, so the body is never copied.
func (s *Signature) mac(key []byte, parts [][]byte) []byte {
	m := hmac.New(s.newHash, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// Sign returns the signature a sender would present for these signed parts
// under an HMAC key, encoded and prefixed as the header carries it (without
// the comma_list or key_value framing). It serves tests and tools.
func (s *Signature) Sign(key []byte, parts ...[]byte) string {
	mac := s.mac(key, parts)
	if s.Encoding == "base64" {
		return s.Prefix + base64.StdEncoding.EncodeToString(mac)
	}
	return s.Prefix + hex.EncodeToString(mac)
}

func (s *Signature) decode(v string) ([]byte, bool) {
	if s.Encoding == "hex" {
		b, err := hex.DecodeString(v)
		return b, err == nil
	}
	b, err := decodeBase64(v)
	return b, err == nil
}

// parseUnixSeconds accepts only decimal digits: no sign, no fraction, no
// spaces, so a timestamp has one spelling and cannot shift the signed bytes.
func parseUnixSeconds(s string) (int64, bool) {
	if s == "" || len(s) > 12 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// ParseCommaList reads a Standard Webhooks style header: items separated by
// spaces, each "<version>,<signature>". It returns the signatures labelled
// version, in order; items of other versions are skipped (a sender may add
// schemes a receiver does not know). An item without a comma, a header with
// no signature of that version, or more than maxSignatures items fail.
func ParseCommaList(header, version string) ([]string, error) {
	var sigs []string
	items := 0
	for item := range strings.FieldsSeq(header) {
		items++
		if items > maxSignatures {
			return nil, fmt.Errorf("more than %d signatures", maxSignatures)
		}
		v, sig, ok := strings.Cut(item, ",")
		if !ok || v == "" {
			return nil, errors.New("an item is not <version>,<signature>")
		}
		if v == version && sig != "" {
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("no %s signature", version)
	}
	return sigs, nil
}

// ParseKeyValue reads a Stripe style header: comma-separated "<key>=<value>"
// pairs. It returns the value of tsKey (which may appear at most once; ""
// when tsKey is "" or absent) and every value of sigKey, in order. Other
// keys are skipped. A pair without '=', a repeated timestamp, no signature
// under sigKey, or more than maxSignatures pairs fail.
func ParseKeyValue(header, tsKey, sigKey string) (ts string, sigs []string, err error) {
	pairs := 0
	seenTS := false
	for pair := range strings.SplitSeq(header, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		pairs++
		if pairs > maxSignatures+1 {
			return "", nil, fmt.Errorf("more than %d signatures", maxSignatures)
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return "", nil, errors.New("an element is not <key>=<value>")
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case tsKey != "" && k == tsKey:
			if seenTS {
				return "", nil, fmt.Errorf("%s= appears twice", tsKey)
			}
			seenTS, ts = true, v
		case k == sigKey && v != "":
			sigs = append(sigs, v)
		}
	}
	if len(sigs) == 0 {
		return "", nil, fmt.Errorf("no %s= signature", sigKey)
	}
	return ts, sigs, nil
}
