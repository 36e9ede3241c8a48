package auth

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Basic checks HTTP basic auth, which is how ControlShift's webhook endpoint
// URLs carry credentials (https://user:password@host/path). Several passwords
// may be active at once, for rotation.
type Basic struct {
	Username  string
	Passwords [][]byte

	user, passwords digests
}

// NewBasic validates a basic auth configuration.
func NewBasic(username string, passwords []string) (*Basic, error) {
	if username == "" {
		return nil, errors.New("basic: username is empty")
	}
	p := nonEmpty(passwords)
	if len(p) == 0 {
		return nil, errors.New("basic: no password is set (is the environment variable empty?)")
	}
	return &Basic{Username: username, Passwords: p, user: digestsOf([]byte(username)), passwords: digestsOf(p...)}, nil
}

// Verify implements Verifier.
func (b *Basic) Verify(r Request) error {
	user, pass, ok := parseBasic(r.Header("Authorization"))
	if !ok {
		return ErrMissingCredentials
	}
	userOK := b.user.match(user)
	passOK := b.passwords.match(pass)
	if userOK && passOK {
		return nil
	}
	return ErrBadCredentials
}

func parseBasic(h string) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}

// SecretHeaders implements SecretHeaders.
func (b *Basic) SecretHeaders() []string { return []string{"Authorization"} }
