// Package archive holds hookpipe's raw webhook archive: the record the
// webhook_server input writes for every request it accepts (the body exactly
// as received, the headers needed to verify it again, when and where it came
// from), its integrity seal, and the webhook_replay processor that turns
// archived records back into deliveries for the same processors.
package archive

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
)

// RecordVersion is the version of the record format written today.
const RecordVersion = 1

// Record is one archived request, written as one JSON line.
type Record struct {
	Version    int               `json:"v"`
	ReceivedAt string            `json:"received_at"`
	Provider   string            `json:"provider"`
	Endpoint   string            `json:"endpoint"`
	Source     string            `json:"source"`
	RemoteAddr string            `json:"remote_addr"`
	RequestID  string            `json:"request_id"`
	Headers    map[string]string `json:"headers,omitempty"`
	// Body is the raw request body. Bodies are valid UTF-8 (the input refuses
	// others), so a JSON string keeps every byte.
	Body string `json:"body"`
	// Seal is a keyed HMAC-SHA256 over the fields above, hex: with a seal key
	// configured, a record altered after it was written fails replay.
	Seal string `json:"seal,omitempty"`
}

// ErrBadSeal means a record's seal matches none of the keys.
var ErrBadSeal = errors.New("archive record seal does not verify: the record was altered or sealed with another key")

// ErrNoSeal means a record carries no seal while seal keys are configured.
var ErrNoSeal = errors.New("archive record has no seal")

// sealMAC covers every field that replay trusts, each length-prefixed so
// that no two records share a sealed text.
func (r *Record) sealMAC(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	field := func(s string) {
		m.Write([]byte(strconv.Itoa(len(s))))
		m.Write([]byte{':'})
		m.Write([]byte(s))
	}
	field(strconv.Itoa(r.Version))
	field(r.ReceivedAt)
	field(r.Provider)
	field(r.Endpoint)
	field(r.Source)
	field(r.RemoteAddr)
	field(r.RequestID)
	// Headers in a fixed order: sorted names.
	names := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	field(strconv.Itoa(len(names)))
	for _, k := range names {
		field(k)
		field(r.Headers[k])
	}
	field(r.Body)
	return m.Sum(nil)
}

// SealWith sets the record's seal.
func (r *Record) SealWith(key []byte) {
	r.Seal = hex.EncodeToString(r.sealMAC(key))
}

// VerifySeal checks the seal against every key (rotation), in constant time.
func (r *Record) VerifySeal(keys [][]byte) error {
	if r.Seal == "" {
		return ErrNoSeal
	}
	got, err := hex.DecodeString(r.Seal)
	if err != nil {
		return ErrBadSeal
	}
	ok := false
	for _, k := range keys {
		if hmac.Equal(got, r.sealMAC(k)) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSeal
	}
	return nil
}
