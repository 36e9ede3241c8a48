// Package auth authenticates webhook deliveries on their raw bytes: The City's
// X-City-Webhook-Signature (a shared value or an HMAC of the body), HTTP basic
// auth, secret tokens, and a declarative signature check (Signature) that a
// config describes field by field, with presets for Standard Webhooks, GitHub
// and Stripe. Every comparison is constant-time, and every method accepts
// several active secrets so a secret can be rotated without downtime.
//
// The same verifiers serve the webhook input (on the live request) and the
// provider processors (on a message whose headers were kept as metadata), so a
// replayed delivery is checked by the very code that checked it live.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// ErrMissingCredentials means the request carried no credentials at all.
var ErrMissingCredentials = errors.New("missing credentials")

// ErrBadCredentials means the request carried credentials that match no
// active secret.
var ErrBadCredentials = errors.New("invalid credentials")

// Request is what a verifier may look at. Header and Query return "" for
// an absent value; PathToken is the path segment that follows an endpoint's
// path, when the endpoint takes its token in the path.
type Request struct {
	Header    func(name string) string
	Query     func(name string) string
	PathToken string
	Body      []byte
}

// Verifier authenticates one request. It returns nil, ErrMissingCredentials
// or ErrBadCredentials (possibly wrapped), and never echoes a secret.
type Verifier interface {
	Verify(r Request) error
}

// All is a verifier that passes when each of its members passes.
type All []Verifier

// Verify implements Verifier.
func (a All) Verify(r Request) error {
	for _, v := range a {
		if err := v.Verify(r); err != nil {
			return err
		}
	}
	return nil
}

// digests are the SHA-256 sums of a verifier's secrets, taken once when it is
// built, so that a check hashes only the presented value.
type digests [][sha256.Size]byte

func digestsOf(secrets ...[]byte) digests {
	d := make(digests, len(secrets))
	for i, s := range secrets {
		d[i] = sha256.Sum256(s)
	}
	return d
}

// match reports whether presented equals any of the secrets, comparing
// fixed-size digests in constant time against every one of them, so that
// timing tells neither a secret's length nor which secret matched.
func (d digests) match(presented string) bool {
	p := sha256.Sum256([]byte(presented))
	ok := 0
	for i := range d {
		ok |= subtle.ConstantTimeCompare(p[:], d[i][:])
	}
	return ok == 1
}

// nonEmpty drops empty secrets, which is what an unset optional environment
// variable such as ${CITY_SECRET_PREVIOUS:} leaves in a config list.
func nonEmpty(in []string) [][]byte {
	var out [][]byte
	for _, s := range in {
		if s != "" {
			out = append(out, []byte(s))
		}
	}
	return out
}

// SecretHeaders is implemented by verifiers whose credentials travel as a
// secret in a header (basic auth, a shared signature value, a header token).
// Those headers must never be stored, e.g. in a raw archive.
type SecretHeaders interface {
	SecretHeaders() []string
}

// SecretHeaders implements SecretHeaders for every member that does.
func (a All) SecretHeaders() []string {
	var out []string
	for _, v := range a {
		if s, ok := v.(SecretHeaders); ok {
			out = append(out, s.SecretHeaders()...)
		}
	}
	return out
}
