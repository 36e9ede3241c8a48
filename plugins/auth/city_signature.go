package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// City signature modes.
const (
	ModeShared     = "shared"
	ModeHMACSHA256 = "hmac_sha256"
	ModeHMACSHA1   = "hmac_sha1"
)

// DefaultCitySignatureHeader is the header The City sends its signature in.
const DefaultCitySignatureHeader = "X-City-Webhook-Signature"

// CitySignature checks The City's X-City-Webhook-Signature header. The City's
// document shows the signature as a value found in its admin screens without
// pinning an algorithm, so two readings are offered: the header carries the
// shared value itself (ModeShared), or an HMAC of the raw body keyed with that
// value, hex or base64 encoded (ModeHMACSHA256, ModeHMACSHA1).
type CitySignature struct {
	Header   string
	Mode     string
	Encoding string // hex or base64, for the HMAC modes
	Secrets  [][]byte

	shared digests
}

// NewCitySignature validates a City signature configuration.
func NewCitySignature(header, mode, encoding string, secrets []string) (*CitySignature, error) {
	if header == "" {
		header = DefaultCitySignatureHeader
	}
	switch mode {
	case ModeShared, ModeHMACSHA256, ModeHMACSHA1:
	default:
		return nil, fmt.Errorf("city_signature: unknown mode %q (want %s, %s or %s)", mode, ModeShared, ModeHMACSHA256, ModeHMACSHA1)
	}
	switch encoding {
	case "hex", "base64":
	default:
		return nil, fmt.Errorf("city_signature: unknown encoding %q (want hex or base64)", encoding)
	}
	s := nonEmpty(secrets)
	if len(s) == 0 {
		return nil, errors.New("city_signature: no secret is set (is the environment variable empty?)")
	}
	return &CitySignature{Header: header, Mode: mode, Encoding: encoding, Secrets: s, shared: digestsOf(s...)}, nil
}

// Verify implements Verifier.
func (c *CitySignature) Verify(r Request) error {
	got := strings.TrimSpace(r.Header(c.Header))
	if got == "" {
		return ErrMissingCredentials
	}
	if c.Mode == ModeShared {
		if c.shared.match(got) {
			return nil
		}
		return ErrBadCredentials
	}
	presented, ok := c.decode(got)
	if !ok {
		return ErrBadCredentials
	}
	matched := 0
	for _, s := range c.Secrets {
		if hmac.Equal(presented, c.Sign(s, r.Body)) {
			matched = 1
		}
	}
	if matched == 1 {
		return nil
	}
	return ErrBadCredentials
}

// Sign returns the raw MAC of body under secret, for the HMAC modes.
func (c *CitySignature) Sign(secret, body []byte) []byte {
	var h func() hash.Hash = sha256.New
	if c.Mode == ModeHMACSHA1 {
		h = sha1.New
	}
	m := hmac.New(h, secret)
	m.Write(body)
	return m.Sum(nil)
}

// Encode renders a MAC the way the header carries it.
func (c *CitySignature) Encode(mac []byte) string {
	if c.Encoding == "base64" {
		return base64.StdEncoding.EncodeToString(mac)
	}
	return hex.EncodeToString(mac)
}

// decode accepts an optional "sha256=" / "sha1=" prefix, upper- or lower-case
// hex, and standard or URL-safe base64 with or without padding.
func (c *CitySignature) decode(v string) ([]byte, bool) {
	if i := strings.IndexByte(v, '='); i > 0 && i < 8 && strings.HasPrefix(v, "sha") {
		v = v[i+1:]
	}
	if c.Encoding == "hex" {
		b, err := hex.DecodeString(v)
		return b, err == nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b, true
		}
	}
	return nil, false
}

// SecretHeaders implements SecretHeaders: in shared mode the header is the
// secret itself; an HMAC reveals nothing and may be kept for re-verification.
func (c *CitySignature) SecretHeaders() []string {
	if c.Mode == ModeShared {
		return []string{c.Header}
	}
	return nil
}
