package auth

import (
	"errors"
	"fmt"
)

// Where a secret token is carried.
const (
	TokenInQuery  = "query"
	TokenInPath   = "path"
	TokenInHeader = "header"
)

// Token checks a secret token carried in the query string, in the path
// segment after the endpoint's path, or in a header. It suits providers, like
// ControlShift, that sign nothing but let the endpoint URL carry a secret.
type Token struct {
	In      string
	Name    string
	Secrets [][]byte

	digests digests
}

// NewToken validates a token configuration.
func NewToken(in, name string, secrets []string) (*Token, error) {
	switch in {
	case TokenInQuery, TokenInHeader:
		if name == "" {
			return nil, fmt.Errorf("token: name is required when the token is in the %s", in)
		}
	case TokenInPath:
	default:
		return nil, fmt.Errorf("token: unknown location %q (want query, path or header)", in)
	}
	s := nonEmpty(secrets)
	if len(s) == 0 {
		return nil, errors.New("token: no secret is set (is the environment variable empty?)")
	}
	return &Token{In: in, Name: name, Secrets: s, digests: digestsOf(s...)}, nil
}

// Verify implements Verifier.
func (t *Token) Verify(r Request) error {
	var got string
	switch t.In {
	case TokenInQuery:
		got = r.Query(t.Name)
	case TokenInHeader:
		got = r.Header(t.Name)
	default:
		got = r.PathToken
	}
	if got == "" {
		return ErrMissingCredentials
	}
	if t.digests.match(got) {
		return nil
	}
	return ErrBadCredentials
}

// SecretHeaders implements SecretHeaders.
func (t *Token) SecretHeaders() []string {
	if t.In == TokenInHeader {
		return []string{t.Name}
	}
	return nil
}
