package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Published test vectors and independently computed signatures.
const (
	// Standard Webhooks: the signing vector of the specification's reference
	// libraries (standard-webhooks/standard-webhooks, libraries/*/ tests).
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swBody      = `{"test": 2432232314}`
	swSig       = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	// Standard Webhooks v1a (ed25519): the specification publishes no vector
	// with its key, so this pair was made with OpenSSL 3.0 (genpkey -algorithm
	// ed25519; pkeyutl -sign -rawin) over the same id, timestamp and body.
	swPublicKey = "whpk_CiFQCF1wAw19Rm2MHvqjaMVobxydxnN3rhOADjyTvEU="
	swEdSig     = "v1a,1yXXqE5jLKW+5PmH5aR3fGIZUSAWjI8oia2sVFKjHehQ3hpuGqdTaFCld+hTEWPCFR4NxVELMJfuhDsZaFGpDA=="

	// GitHub: "Testing the webhook payload validation" in GitHub's
	// "Validating webhook deliveries".
	ghSecret = "It's a Secret to Everybody"
	ghBody   = "Hello, World!"
	ghSig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	// Stripe documents the scheme (t=..., v1=hex HMAC-SHA256 of "<t>.<body>")
	// but publishes no secret with an example signature, so this one was
	// computed with OpenSSL: printf '%s' '1492774577.<body>' |
	// openssl dgst -sha256 -hmac whsec_hookpipe_test_only_secret.
	// 1492774577 is the timestamp of the documentation's example header.
	stSecret    = "whsec_hookpipe_test_only_secret"
	stTimestamp = 1492774577
	stBody      = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}`
	stSig       = "fc683ed64006f3420b752419d964b43d12db2dae4ae98cd537303d423bcfe4aa"
)

func clock(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

func preset(t testing.TB, name string, now int64, secrets ...string) *Signature {
	t.Helper()
	c, err := ApplyPreset(name, SignatureConfig{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSignature(c)
	if err != nil {
		t.Fatal(err)
	}
	s.Now = clock(now)
	return s
}

type sigCase struct {
	name    string
	header  map[string]string
	body    string
	now     int64 // 0: the verifier's own clock
	secrets []string
	want    error
}

func runSigCases(t *testing.T, presetName string, defaultNow int64, defaultSecrets []string, cases []sigCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			secrets := defaultSecrets
			if c.secrets != nil {
				secrets = c.secrets
			}
			now := defaultNow
			if c.now != 0 {
				now = c.now
			}
			v := preset(t, presetName, now, secrets...)
			h := http.Header{}
			for k, val := range c.header {
				h.Set(k, val)
			}
			err := v.Verify(Request{Header: h.Get, Body: []byte(c.body)})
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if err != nil {
				for _, s := range secrets {
					if s != "" && strings.Contains(err.Error(), s) {
						t.Fatalf("error names a secret: %v", err)
					}
				}
			}
		})
	}
}

func swHeaders(sig string, drop ...string) map[string]string {
	h := map[string]string{"webhook-id": swMsgID, "webhook-timestamp": strconv.Itoa(swTimestamp), "webhook-signature": sig}
	for _, d := range drop {
		delete(h, d)
	}
	return h
}

func TestStandardWebhooksVector(t *testing.T) {
	other := "whsec_" + "dGhlLW90aGVyLXNlY3JldC1mb3ItdGVzdHM="
	runSigCases(t, PresetStandardWebhooks, swTimestamp, []string{swSecret}, []sigCase{
		{name: "published vector", header: swHeaders(swSig), body: swBody},
		{name: "secret without whsec_ prefix", header: swHeaders(swSig), body: swBody, secrets: []string{strings.TrimPrefix(swSecret, "whsec_")}},
		{name: "wrong secret", header: swHeaders(swSig), body: swBody, secrets: []string{other}, want: ErrBadCredentials},
		{name: "rotated: previous secret still listed", header: swHeaders(swSig), body: swBody, secrets: []string{other, "", swSecret}},
		{name: "several signatures, one valid", header: swHeaders("v1,bm9wZQ== " + swSig + " v1a,bm9wZQ=="), body: swBody},
		{name: "valid signature under another version", header: swHeaders("v2," + strings.TrimPrefix(swSig, "v1,")), body: swBody, want: ErrBadCredentials},
		{name: "at the edge of the tolerance, past", header: swHeaders(swSig), body: swBody, now: swTimestamp + 300},
		{name: "at the edge of the tolerance, future", header: swHeaders(swSig), body: swBody, now: swTimestamp - 300},
		{name: "stale timestamp", header: swHeaders(swSig), body: swBody, now: swTimestamp + 301, want: ErrBadCredentials},
		{name: "future timestamp", header: swHeaders(swSig), body: swBody, now: swTimestamp - 301, want: ErrBadCredentials},
		{name: "missing signature header", header: swHeaders(swSig, "webhook-signature"), body: swBody, want: ErrMissingCredentials},
		{name: "missing id header", header: swHeaders(swSig, "webhook-id"), body: swBody, want: ErrMissingCredentials},
		{name: "missing timestamp header", header: swHeaders(swSig, "webhook-timestamp"), body: swBody, want: ErrMissingCredentials},
		{name: "signature over another body", header: swHeaders(swSig), body: `{"test": 2432232315}`, want: ErrBadCredentials},
		{name: "another id", header: map[string]string{"webhook-id": swMsgID + "x", "webhook-timestamp": strconv.Itoa(swTimestamp), "webhook-signature": swSig}, body: swBody, want: ErrBadCredentials},
		{name: "timestamp spelled differently", header: map[string]string{"webhook-id": swMsgID, "webhook-timestamp": "+" + strconv.Itoa(swTimestamp), "webhook-signature": swSig}, body: swBody, want: ErrBadCredentials},
		{name: "item without comma", header: swHeaders("v1" + swSig), body: swBody, want: ErrBadCredentials},
	})
}

func TestStandardWebhooksEd25519(t *testing.T) {
	v := preset(t, PresetStandardWebhooks, swTimestamp, swPublicKey)
	if v.Algorithm != AlgEd25519 || v.Version != "v1a" {
		t.Fatalf("a whpk_ key should select ed25519/v1a, got %s/%s", v.Algorithm, v.Version)
	}
	// Another valid public key (RFC 8032's second test key).
	const otherKey = "whpk_PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="
	runSigCases(t, PresetStandardWebhooks, swTimestamp, []string{swPublicKey}, []sigCase{
		{name: "v1a signature", header: swHeaders(swEdSig), body: swBody},
		{name: "next to an HMAC signature", header: swHeaders(swSig + " " + swEdSig), body: swBody},
		{name: "wrong key", header: swHeaders(swEdSig), body: swBody, secrets: []string{otherKey}, want: ErrBadCredentials},
		{name: "rotated key", header: swHeaders(swEdSig), body: swBody, secrets: []string{otherKey, swPublicKey}},
		{name: "v1 label on an ed25519 signature", header: swHeaders("v1," + strings.TrimPrefix(swEdSig, "v1a,")), body: swBody, want: ErrBadCredentials},
		{name: "stale", header: swHeaders(swEdSig), body: swBody, now: swTimestamp + 301, want: ErrBadCredentials},
		{name: "future", header: swHeaders(swEdSig), body: swBody, now: swTimestamp - 301, want: ErrBadCredentials},
		{name: "other body", header: swHeaders(swEdSig), body: swBody + " ", want: ErrBadCredentials},
		{name: "missing header", header: swHeaders(swEdSig, "webhook-signature"), body: swBody, want: ErrMissingCredentials},
	})
}

func TestGitHubVector(t *testing.T) {
	const delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	gh := func(sig string) map[string]string {
		return map[string]string{"X-Hub-Signature-256": sig, "X-GitHub-Delivery": delivery}
	}
	runSigCases(t, PresetGitHub, 1, []string{ghSecret}, []sigCase{
		{name: "published vector", header: gh(ghSig), body: ghBody},
		// GitHub signs no timestamp, so the clock plays no part.
		{name: "any clock", header: gh(ghSig), body: ghBody, now: 4102444800},
		{name: "wrong secret", header: gh(ghSig), body: ghBody, secrets: []string{"It's a Secret to Nobody"}, want: ErrBadCredentials},
		{name: "rotated: previous secret still listed", header: gh(ghSig), body: ghBody, secrets: []string{"new secret", ghSecret}},
		{name: "no sha256= prefix", header: gh(strings.TrimPrefix(ghSig, "sha256=")), body: ghBody, want: ErrBadCredentials},
		{name: "sha1= prefix", header: gh("sha1=" + strings.TrimPrefix(ghSig, "sha256=")), body: ghBody, want: ErrBadCredentials},
		{name: "missing signature header", header: map[string]string{"X-GitHub-Delivery": delivery}, body: ghBody, want: ErrMissingCredentials},
		{name: "missing delivery header", header: map[string]string{"X-Hub-Signature-256": ghSig}, body: ghBody, want: ErrMissingCredentials},
		{name: "signature over another body", header: gh(ghSig), body: "Hello, World?", want: ErrBadCredentials},
		{name: "truncated signature", header: gh(ghSig[:len(ghSig)-2]), body: ghBody, want: ErrBadCredentials},
	})
}

func TestStripeScheme(t *testing.T) {
	ts := strconv.Itoa(stTimestamp)
	st := func(h string) map[string]string { return map[string]string{"Stripe-Signature": h} }
	other := "whsec_other"
	otherSig := hmacHex(other, ts+"."+stBody)
	runSigCases(t, PresetStripe, stTimestamp+10, []string{stSecret}, []sigCase{
		{name: "computed vector", header: st("t=" + ts + ",v1=" + stSig), body: stBody},
		{name: "documented layout with v0", header: st("t=" + ts + ",v1=" + stSig + ",v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"), body: stBody},
		{name: "two v1 during a roll, the matching one second", header: st("t=" + ts + ",v1=" + otherSig + ",v1=" + stSig), body: stBody},
		{name: "wrong secret", header: st("t=" + ts + ",v1=" + stSig), body: stBody, secrets: []string{other}, want: ErrBadCredentials},
		{name: "rotated: previous secret still listed", header: st("t=" + ts + ",v1=" + stSig), body: stBody, secrets: []string{other, stSecret}},
		{name: "stale timestamp", header: st("t=" + ts + ",v1=" + stSig), body: stBody, now: stTimestamp + 301, want: ErrBadCredentials},
		{name: "future timestamp", header: st("t=" + ts + ",v1=" + stSig), body: stBody, now: stTimestamp - 301, want: ErrBadCredentials},
		{name: "missing header", body: stBody, want: ErrMissingCredentials},
		{name: "missing t", header: st("v1=" + stSig), body: stBody, want: ErrMissingCredentials},
		{name: "t twice", header: st("t=" + ts + ",t=" + ts + ",v1=" + stSig), body: stBody, want: ErrBadCredentials},
		{name: "another t", header: st("t=" + strconv.Itoa(stTimestamp+1) + ",v1=" + stSig), body: stBody, want: ErrBadCredentials},
		{name: "only v0", header: st("t=" + ts + ",v0=" + stSig), body: stBody, want: ErrBadCredentials},
		{name: "signature over another body", header: st("t=" + ts + ",v1=" + stSig), body: strings.Replace(stBody, "paid", "void", 1), want: ErrBadCredentials},
	})
	// The independent implementation and the verifier's own agree.
	if got := hmacHex(stSecret, ts+"."+stBody); got != stSig {
		t.Fatalf("crypto/hmac gives %s, OpenSSL gave %s", got, stSig)
	}
}

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// A custom scheme written field by field, with the other HMAC algorithms.
// Expected values computed with OpenSSL (openssl dgst -sha512 / -sha1 -hmac).
func TestCustomSignature(t *testing.T) {
	const body = `{"event":"ping"}`
	sha512, err := NewSignature(SignatureConfig{
		Header: "X-Signature", Algorithm: AlgHMACSHA512, Encoding: "base64",
		SignedPayload: "{header:X-Time}:{body}", TimestampHeader: "X-Time", Tolerance: time.Minute,
		Secrets: []string{"custom-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sha512.Now = clock(1700000030)
	h := http.Header{}
	h.Set("X-Signature", "udPMUxYhYKtb8b264nkXb5588fTJxTbuvgAV0bxWofpxUbS9trAp9RQ5UHx/MKb2OqCInUkEL77WLbUYFDnEcg==")
	h.Set("X-Time", "1700000000")
	if err := sha512.Verify(Request{Header: h.Get, Body: []byte(body)}); err != nil {
		t.Fatalf("hmac_sha512: %v", err)
	}
	sha512.Now = clock(1700000061)
	if err := sha512.Verify(Request{Header: h.Get, Body: []byte(body)}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("hmac_sha512 past a 1m tolerance: %v", err)
	}

	// key_value without a timestamp: signatures only.
	kv, err := NewSignature(SignatureConfig{Header: "X-Signature", Format: FormatKeyValue, Version: "s1", Algorithm: AlgHMACSHA1, Secrets: []string{"custom-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	h.Set("X-Signature", "s0=00,s1=8427af6653db871240cba2b63072a83e3a92315a")
	if err := kv.Verify(Request{Header: h.Get, Body: []byte(body)}); err != nil || kv.TimestampKey != "" {
		t.Fatalf("key_value without a timestamp: %v (timestamp key %q)", err, kv.TimestampKey)
	}

	sha1, err := NewSignature(SignatureConfig{Header: "X-Signature", Algorithm: AlgHMACSHA1, Secrets: []string{"custom-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	h.Set("X-Signature", "8427AF6653DB871240CBA2B63072A83E3A92315A") // upper-case hex is the same bytes
	if err := sha1.Verify(Request{Header: h.Get, Body: []byte(body)}); err != nil {
		t.Fatalf("hmac_sha1: %v", err)
	}
	if err := sha1.Verify(Request{Header: h.Get, Body: []byte(body + "\n")}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("hmac_sha1 other body: %v", err)
	}
	if got := sha1.Sign([]byte("custom-secret"), []byte(body)); got != "8427af6653db871240cba2b63072a83e3a92315a" {
		t.Fatalf("Sign: %s", got)
	}
}

func TestNewSignatureRefuses(t *testing.T) {
	for name, c := range map[string]SignatureConfig{
		"no header":                     {Secrets: []string{"x"}},
		"no secret":                     {Header: "X-Sig", Secrets: []string{"", ""}},
		"unknown algorithm":             {Header: "X-Sig", Algorithm: "md5", Secrets: []string{"x"}},
		"unknown encoding":              {Header: "X-Sig", Encoding: "base32", Secrets: []string{"x"}},
		"unknown format":                {Header: "X-Sig", Format: "json", Secrets: []string{"x"}},
		"unknown secret encoding":       {Header: "X-Sig", SecretEncoding: "hex", Secrets: []string{"x"}},
		"unsigned timestamp header":     {Header: "X-Sig", TimestampHeader: "X-Time", Secrets: []string{"x"}},
		"unsigned key_value timestamp":  {Header: "X-Sig", Format: FormatKeyValue, TimestampKey: "t", Secrets: []string{"x"}},
		"timestamp placeholder, no src": {Header: "X-Sig", SignedPayload: "{timestamp}.{body}", Secrets: []string{"x"}},
		"timestamp_key on plain":        {Header: "X-Sig", TimestampKey: "t", SignedPayload: "{t}.{body}", Secrets: []string{"x"}},
		"both timestamp sources":        {Header: "X-Sig", Format: FormatKeyValue, TimestampKey: "t", TimestampHeader: "X-Time", SignedPayload: "{t}.{body}", Secrets: []string{"x"}},
		"no body in payload":            {Header: "X-Sig", SignedPayload: "{header:X-Id}", Secrets: []string{"x"}},
		"body twice":                    {Header: "X-Sig", SignedPayload: "{body}{body}", Secrets: []string{"x"}},
		"unknown placeholder":           {Header: "X-Sig", SignedPayload: "{id}.{body}", Secrets: []string{"x"}},
		"unclosed placeholder":          {Header: "X-Sig", SignedPayload: "{body", Secrets: []string{"x"}},
		"stray brace":                   {Header: "X-Sig", SignedPayload: "}{body}", Secrets: []string{"x"}},
		"bad base64 secret":             {Header: "X-Sig", SecretEncoding: SecretBase64, Secrets: []string{"whsec_not*base64"}},
		"short ed25519 key":             {Header: "X-Sig", Algorithm: AlgEd25519, SecretEncoding: SecretBase64, Secrets: []string{"whpk_AAAA"}},
		"negative tolerance":            {Header: "X-Sig", Tolerance: -time.Second, Secrets: []string{"x"}},
		"version with a comma":          {Header: "X-Sig", Format: FormatCommaList, Version: "v1,", Secrets: []string{"x"}},
	} {
		if _, err := NewSignature(c); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "not*base64") {
			t.Errorf("%s: error repeats the secret: %v", name, err)
		}
	}
	if _, err := ApplyPreset("gitlab", SignatureConfig{}); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestPresetOverrides(t *testing.T) {
	c, err := ApplyPreset(PresetGitHub, SignatureConfig{Header: "X-Hub-Signature", Prefix: "sha1=", Algorithm: AlgHMACSHA1, Secrets: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Header != "X-Hub-Signature" || c.Prefix != "sha1=" || c.Algorithm != AlgHMACSHA1 || c.IDHeader != "X-GitHub-Delivery" || c.Encoding != "hex" {
		t.Fatalf("explicit fields must win and the rest come from the preset: %+v", c)
	}
}

func authSpec() *service.ConfigSpec {
	return service.NewConfigSpec().Field(ConfigField("auth"))
}

func TestSignatureFromConfig(t *testing.T) {
	parse := func(t *testing.T, yaml string) (Verifier, error) {
		t.Helper()
		conf, err := authSpec().ParseYAML(yaml, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := FromConfig(conf.Namespace("auth"))
		return v, err
	}

	// A preset with one field overridden, secrets with an unset entry.
	v, err := parse(t, `
auth:
  signature:
    preset: stripe
    tolerance: 10m
    secrets: [ "`+stSecret+`", "" ]
`)
	if err != nil {
		t.Fatal(err)
	}
	sig := v.(All)[0].(*Signature)
	if sig.Tolerance != 10*time.Minute || sig.Header != "Stripe-Signature" || sig.Format != FormatKeyValue {
		t.Fatalf("preset not applied or override lost: %+v", sig)
	}
	sig.Now = clock(stTimestamp + 599)
	h := http.Header{}
	h.Set("Stripe-Signature", "t="+strconv.Itoa(stTimestamp)+",v1="+stSig)
	if err := v.Verify(Request{Header: h.Get, Body: []byte(stBody)}); err != nil {
		t.Fatalf("configured stripe check: %v", err)
	}

	// A custom scheme.
	if _, err := parse(t, `
auth:
  signature:
    header: X-Signature
    prefix: "sha512="
    algorithm: hmac_sha512
    encoding: base64
    signed_payload: "{header:X-Request-Timestamp}.{body}"
    timestamp_header: X-Request-Timestamp
    id_header: X-Request-Id
    secrets: [ "s" ]
`); err != nil {
		t.Fatalf("custom scheme: %v", err)
	}

	// Configured but every secret unset: a config error, never an open door.
	if _, err := parse(t, `
auth:
  signature:
    preset: github
    secrets: [ "", "" ]
`); err == nil || !strings.Contains(err.Error(), "no secret") {
		t.Fatalf("unset secrets: %v", err)
	}
	// Not configured at all: the endpoint has no check.
	if _, err := parse(t, `
auth: {}
`); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("no check: %v", err)
	}
	if _, err := parse(t, "auth:\n  signature:\n    preset: stripe\n    tolerance: 0s\n    secrets: [ s ]\n"); err == nil {
		t.Fatal("a zero tolerance accepted")
	}
	if _, err := parse(t, "auth:\n  signature:\n    preset: gitlab\n    secrets: [ s ]\n"); err == nil {
		t.Fatal("unknown preset accepted")
	}
}

func TestParseCommaList(t *testing.T) {
	got, err := ParseCommaList("  v1,a  v1a,b v1,c\tv2,d ", "v1")
	if err != nil || strings.Join(got, "|") != "a|c" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, h := range []string{"", "v1", "v1a,b", ",a", strings.Repeat("v1,a ", maxSignatures+1)} {
		if got, err := ParseCommaList(h, "v1"); err == nil {
			t.Errorf("%q: accepted %q", h, got)
		}
	}
}

func TestParseKeyValue(t *testing.T) {
	ts, sigs, err := ParseKeyValue("t=1492774577, v1=aa ,v0=bb,v1=cc,,x=y", "t", "v1")
	if err != nil || ts != "1492774577" || strings.Join(sigs, "|") != "aa|cc" {
		t.Fatalf("got %q %q %v", ts, sigs, err)
	}
	for _, h := range []string{"", "t=1", "t=1,v1", "t=1,t=2,v1=a", "t=1,v1=", strings.Repeat("v1=a,", maxSignatures+2)} {
		if ts, sigs, err := ParseKeyValue(h, "t", "v1"); err == nil {
			t.Errorf("%q: accepted %q %q", h, ts, sigs)
		}
	}
}

func FuzzParseCommaList(f *testing.F) {
	f.Add(swSig, []byte(swBody), "msg_1", int64(swTimestamp))
	f.Add("v1,a v1a,b", []byte("{}"), "", int64(0))
	f.Add("v1,,, v1,=", []byte{}, "m.1", int64(-1))
	v := preset(f, PresetStandardWebhooks, swTimestamp, swSecret)
	key, _ := decodeSecret(swSecret)
	f.Fuzz(func(t *testing.T, header string, body []byte, id string, ts int64) {
		sigs, err := ParseCommaList(header, "v1")
		if err == nil {
			if len(sigs) == 0 || len(sigs) > maxSignatures {
				t.Fatalf("%d signatures from %q", len(sigs), header)
			}
			for _, s := range sigs {
				if s == "" || strings.ContainsAny(s, " \t\n") || !strings.Contains(header, "v1,"+s) {
					t.Fatalf("signature %q is not an item of %q", s, header)
				}
			}
		}
		// Only the right signature, for this id, timestamp and body, within
		// the tolerance, may pass.
		tsText := strconv.FormatInt(ts, 10)
		h := http.Header{}
		h.Set("webhook-signature", header)
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", tsText)
		if v.Verify(Request{Header: h.Get, Body: body}) != nil {
			return
		}
		if d := ts - swTimestamp; d > 300 || d < -300 {
			t.Fatalf("timestamp %d accepted at %d", ts, swTimestamp)
		}
		want := "v1," + v.Sign(key, []byte(h.Get("webhook-id")), []byte("."), []byte(tsText), []byte("."), body)
		found := false
		for _, s := range sigs {
			b1, _ := decodeBase64(s)
			b2, _ := decodeBase64(strings.TrimPrefix(want, "v1,"))
			found = found || hmac.Equal(b1, b2)
		}
		if !found {
			t.Fatalf("accepted %q for id %q body %q", header, id, body)
		}
	})
}

func FuzzParseKeyValue(f *testing.F) {
	f.Add("t="+strconv.Itoa(stTimestamp)+",v1="+stSig, []byte(stBody))
	f.Add("t=1,v1=a,v1=b,v0=c", []byte("{}"))
	f.Add("t=,=,v1==,,", []byte{})
	v := preset(f, PresetStripe, stTimestamp, stSecret)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		ts, sigs, err := ParseKeyValue(header, "t", "v1")
		if err == nil {
			if len(sigs) == 0 || len(sigs) > maxSignatures+1 {
				t.Fatalf("%d signatures from %q", len(sigs), header)
			}
			for _, s := range sigs {
				if s == "" || strings.Contains(s, ",") || !strings.Contains(header, s) {
					t.Fatalf("signature %q is not a value of %q", s, header)
				}
			}
			if ts != "" && !strings.Contains(header, ts) {
				t.Fatalf("timestamp %q is not in %q", ts, header)
			}
		}
		h := http.Header{}
		h.Set("Stripe-Signature", header)
		if v.Verify(Request{Header: h.Get, Body: body}) != nil {
			return
		}
		sec, ok := parseUnixSeconds(ts)
		if !ok || sec-stTimestamp > 300 || stTimestamp-sec > 300 {
			t.Fatalf("accepted timestamp %q", ts)
		}
		want, _ := hex.DecodeString(hmacHex(stSecret, ts+"."+string(body)))
		found := false
		for _, s := range sigs {
			b, _ := hex.DecodeString(s)
			found = found || hmac.Equal(b, want)
		}
		if !found {
			t.Fatalf("accepted %q for body %q", header, body)
		}
	})
}

func BenchmarkSignatureStandardWebhooks(b *testing.B) {
	v := preset(b, PresetStandardWebhooks, swTimestamp, swSecret, "whsec_dGhlLW90aGVyLXNlY3JldC1mb3ItdGVzdHM=")
	h := http.Header{}
	for k, val := range swHeaders(swSig) {
		h.Set(k, val)
	}
	r := Request{Header: h.Get, Body: []byte(swBody)}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
