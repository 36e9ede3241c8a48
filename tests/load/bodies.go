package main

import (
	"bytes"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/hookpipe/hookpipe/plugins/examples"
)

// Every request carries a delivery id of its own (ControlShift's jid, The
// City's webhook_id), so an idempotent sink stores each request as a new row
// and "stored == answered 200" can be checked exactly.
const (
	controlShiftIDWidth = 24 // a jid is 24 hex digits
	cityIDWidth         = 40 // a webhook_id is 40 hex digits
	runPrefixWidth      = 8  // random per run, so runs against one database never collide
)

// template is one documented example prepared for stamping: body holds a
// placeholder of idLen bytes at idOff.
type template struct {
	provider string
	name     string
	body     []byte
	idOff    int
	idLen    int
}

// mixShare is the share of requests each group of examples receives. A
// ControlShift deployment mostly sees signatures; petitions and The City's
// object changes come next.
type mixShare struct {
	label  string
	share  int // per mille
	accept func(examples.Example) bool
}

var defaultMix = []mixShare{
	{"controlshift signature.created", 600, func(e examples.Example) bool {
		return e.Provider == examples.ControlShift && e.Name == "signature.created"
	}},
	{"controlshift petition.*", 120, func(e examples.Example) bool {
		return e.Provider == examples.ControlShift && strings.HasPrefix(e.Name, "petition.")
	}},
	{"controlshift other types", 80, func(e examples.Example) bool {
		return e.Provider == examples.ControlShift && e.Name != "signature.created" && !strings.HasPrefix(e.Name, "petition.")
	}},
	{"thecity (all documented sections)", 200, func(e examples.Example) bool {
		return e.Provider == examples.TheCity
	}},
}

// scheduleLen is the length of the repeating sequence of templates the
// workers walk through; 1000 slots express the per-mille shares exactly.
const scheduleLen = 1000

// bodyMix prepares the requests of a run: templates, the order they are sent
// in, and the credentials they carry.
type bodyMix struct {
	templates []template
	schedule  []uint16 // index into templates, scheduleLen long
	runPrefix [runPrefixWidth]byte
	meanSize  float64
	groups    []string // "60.0% controlshift signature.created (1 example)"

	basicAuth  string // Authorization header value for ControlShift
	citySecret []byte
	cityHMAC   bool // sign with HMAC-SHA256 instead of sending the shared secret
	citySigHdr string
}

// credentials are generated per run and handed to the server through its
// environment; they are never printed.
type credentials struct {
	csUser, csPassword string
	citySecret         string
}

func newCredentials() credentials {
	return credentials{csUser: "controlshift", csPassword: randomHex(16), citySecret: randomHex(16)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = cryptorand.Read(b)
	return hex.EncodeToString(b)
}

func newBodyMix(cred credentials, cityHMAC bool) (*bodyMix, error) {
	m := &bodyMix{
		basicAuth:  "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.csUser+":"+cred.csPassword)),
		citySecret: []byte(cred.citySecret),
		cityHMAC:   cityHMAC,
	}
	copy(m.runPrefix[:], randomHex(runPrefixWidth/2))
	if cityHMAC {
		m.citySigHdr = "" // computed per request
	} else {
		m.citySigHdr = cred.citySecret
	}

	all := examples.All()
	counts := map[int]int{} // template index -> slots
	total := 0
	for _, g := range defaultMix {
		var members []int
		for _, e := range all {
			if !g.accept(e) {
				continue
			}
			t, err := prepareTemplate(e)
			if err != nil {
				return nil, err
			}
			m.templates = append(m.templates, t)
			members = append(members, len(m.templates)-1)
		}
		if len(members) == 0 {
			return nil, fmt.Errorf("no example matches %q", g.label)
		}
		// Spread the group's slots evenly; the first members take the remainder.
		for i, idx := range members {
			n := g.share / len(members)
			if i < g.share%len(members) {
				n++
			}
			counts[idx] = n
		}
		total += g.share
		noun := "examples"
		if len(members) == 1 {
			noun = "example"
		}
		m.groups = append(m.groups, fmt.Sprintf("%.0f%% %s (%d %s)", float64(g.share)/10, g.label, len(members), noun))
	}
	if total != scheduleLen {
		return nil, fmt.Errorf("mix shares add up to %d per mille", total)
	}
	var size float64
	for idx := range m.templates {
		n := counts[idx]
		for range n {
			m.schedule = append(m.schedule, uint16(idx))
		}
		size += float64(n * len(m.templates[idx].body))
	}
	m.meanSize = size / scheduleLen
	// A fixed seed keeps the sequence identical across runs and scenarios.
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(m.schedule), func(i, j int) { m.schedule[i], m.schedule[j] = m.schedule[j], m.schedule[i] })
	return m, nil
}

// prepareTemplate places an id placeholder in the example: ControlShift's
// jid is overwritten in place; The City's webhook_id is overwritten when the
// example has one and inserted as the first member otherwise. Inserting at
// the front keeps the non-strict examples exactly as non-strict as documented.
func prepareTemplate(e examples.Example) (template, error) {
	t := template{provider: e.Provider, name: e.Name}
	var key string
	switch e.Provider {
	case examples.ControlShift:
		key, t.idLen = `"jid"`, controlShiftIDWidth
	case examples.TheCity:
		key, t.idLen = `"webhook_id"`, cityIDWidth
	default:
		return t, fmt.Errorf("unknown provider %q", e.Provider)
	}
	placeholder := bytes.Repeat([]byte("0"), t.idLen)
	if k := bytes.Index(e.Body, []byte(key)); k >= 0 {
		open := k + len(key) + bytes.IndexByte(e.Body[k+len(key):], '"')
		end := open + 1 + bytes.IndexByte(e.Body[open+1:], '"')
		if open < k+len(key) || end <= open {
			return t, fmt.Errorf("%s/%s: cannot find the value of %s", e.Provider, e.Name, key)
		}
		t.body = append(append(append([]byte{}, e.Body[:open+1]...), placeholder...), e.Body[end:]...)
		t.idOff = open + 1
		return t, nil
	}
	if e.Provider == examples.ControlShift {
		return t, fmt.Errorf("%s/%s has no jid", e.Provider, e.Name)
	}
	brace := bytes.IndexByte(e.Body, '{')
	if brace < 0 {
		return t, fmt.Errorf("%s/%s is not an object", e.Provider, e.Name)
	}
	ins := []byte(`"webhook_id":"` + string(placeholder) + `",`)
	t.body = append(append(append([]byte{}, e.Body[:brace+1]...), ins...), e.Body[brace+1:]...)
	t.idOff = brace + 1 + len(`"webhook_id":"`)
	return t, nil
}

// body returns the n-th request of the run: its template and a fresh copy of
// the body with a unique id stamped in. Copying 1–2 KB and writing a few hex
// digits is all the per-request work; the examples were parsed once.
func (m *bodyMix) body(n uint64) (*template, []byte) {
	t := &m.templates[m.schedule[n%scheduleLen]]
	b := make([]byte, len(t.body))
	copy(b, t.body)
	slot := b[t.idOff : t.idOff+t.idLen]
	copy(slot, m.runPrefix[:])
	const digits = "0123456789abcdef"
	for i := len(slot) - 1; i >= runPrefixWidth; i-- {
		slot[i] = digits[n&0xf]
		n >>= 4
	}
	return t, b
}

// citySignature is the X-City-Webhook-Signature value for body.
func (m *bodyMix) citySignature(body []byte) string {
	if !m.cityHMAC {
		return m.citySigHdr
	}
	h := hmac.New(sha256.New, m.citySecret)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
