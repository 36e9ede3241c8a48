package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func request(h http.Header, q url.Values, pathToken string, body string) Request {
	if h == nil {
		h = http.Header{}
	}
	return Request{Header: h.Get, Query: q.Get, PathToken: pathToken, Body: []byte(body)}
}

func TestCitySignatureShared(t *testing.T) {
	v, err := NewCitySignature("", ModeShared, "hex", []string{"current", "", "previous"})
	if err != nil {
		t.Fatal(err)
	}
	for sig, want := range map[string]error{"current": nil, "previous": nil, " current ": nil, "curren": ErrBadCredentials, "currentx": ErrBadCredentials, "": ErrMissingCredentials} {
		h := http.Header{}
		if sig != "" {
			h.Set("X-City-Webhook-Signature", sig)
		}
		if err := v.Verify(request(h, nil, "", "{}")); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", sig, err, want)
		}
	}
}

func TestCitySignatureHMAC(t *testing.T) {
	body := `{"webhook_object":"User"}`
	m256 := hmac.New(sha256.New, []byte("k2"))
	m256.Write([]byte(body))
	sha256mac := m256.Sum(nil)
	m1 := hmac.New(sha1.New, []byte("k1"))
	m1.Write([]byte(body))
	sha1mac := m1.Sum(nil)
	cases := []struct {
		mode, enc, sig, body string
		want                 error
	}{
		{ModeHMACSHA256, "hex", hex.EncodeToString(sha256mac), body, nil},
		{ModeHMACSHA256, "hex", "sha256=" + hex.EncodeToString(sha256mac), body, nil},
		{ModeHMACSHA256, "hex", "SHA256=" + hex.EncodeToString(sha256mac), body, ErrBadCredentials},
		{ModeHMACSHA256, "base64", base64.StdEncoding.EncodeToString(sha256mac), body, nil},
		{ModeHMACSHA256, "base64", base64.RawURLEncoding.EncodeToString(sha256mac), body, nil},
		{ModeHMACSHA256, "hex", hex.EncodeToString(sha256mac), body + " ", ErrBadCredentials},
		{ModeHMACSHA256, "hex", "zz", body, ErrBadCredentials},
		{ModeHMACSHA1, "hex", hex.EncodeToString(sha1mac), body, nil},
		{ModeHMACSHA1, "hex", hex.EncodeToString(sha256mac), body, ErrBadCredentials},
	}
	for i, c := range cases {
		v, err := NewCitySignature("", c.mode, c.enc, []string{"k1", "k2"})
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set(DefaultCitySignatureHeader, c.sig)
		if err := v.Verify(request(h, nil, "", c.body)); !errors.Is(err, c.want) {
			t.Errorf("case %d (%s %s): %v, want %v", i, c.mode, c.enc, err, c.want)
		}
	}
}

func TestBasic(t *testing.T) {
	v, err := NewBasic("controlshift", []string{"new", "old"})
	if err != nil {
		t.Fatal(err)
	}
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for hdr, want := range map[string]error{
		enc("controlshift:new"): nil, enc("controlshift:old"): nil, "basic " + base64.StdEncoding.EncodeToString([]byte("controlshift:new")): nil,
		enc("controlshift:other"): ErrBadCredentials, enc("admin:new"): ErrBadCredentials, enc("controlshift:"): ErrBadCredentials,
		enc("no-colon"): ErrMissingCredentials, "Basic !!!": ErrMissingCredentials, "Bearer x": ErrMissingCredentials, "": ErrMissingCredentials,
	} {
		h := http.Header{}
		h.Set("Authorization", hdr)
		if err := v.Verify(request(h, nil, "", "")); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", hdr, err, want)
		}
	}
}

func TestToken(t *testing.T) {
	q, _ := NewToken(TokenInQuery, "token", []string{"s1", "s2"})
	p, _ := NewToken(TokenInPath, "", []string{"s1"})
	h, _ := NewToken(TokenInHeader, "X-Token", []string{"s1"})
	hdr := http.Header{}
	hdr.Set("X-Token", "s1")
	checks := []struct {
		v    Verifier
		r    Request
		want error
	}{
		{q, request(nil, url.Values{"token": {"s2"}}, "", ""), nil},
		{q, request(nil, url.Values{"token": {"s3"}}, "", ""), ErrBadCredentials},
		{q, request(nil, url.Values{}, "", ""), ErrMissingCredentials},
		{p, request(nil, nil, "s1", ""), nil},
		{p, request(nil, nil, "s1/x", ""), ErrBadCredentials},
		{h, request(hdr, nil, "", ""), nil},
		{All{q, h}, request(hdr, url.Values{"token": {"s1"}}, "", ""), nil},
		{All{q, h}, request(nil, url.Values{"token": {"s1"}}, "", ""), ErrMissingCredentials},
	}
	for i, c := range checks {
		if err := c.v.Verify(c.r); !errors.Is(err, c.want) {
			t.Errorf("check %d: %v, want %v", i, err, c.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := NewCitySignature("", "md5", "hex", []string{"x"}); err == nil {
		t.Error("unknown mode accepted")
	}
	if _, err := NewCitySignature("", ModeShared, "hex", []string{"", ""}); err == nil {
		t.Error("only empty secrets accepted")
	}
	if _, err := NewBasic("", []string{"x"}); err == nil {
		t.Error("empty user accepted")
	}
	if _, err := NewToken("cookie", "x", []string{"x"}); err == nil {
		t.Error("unknown token location accepted")
	}
}

func FuzzCitySignature(f *testing.F) {
	f.Add("sha256=00ff", []byte(`{"a":1}`))
	f.Add("", []byte{})
	f.Add("////", []byte("x"))
	hexV, _ := NewCitySignature("", ModeHMACSHA256, "hex", []string{"key"})
	b64V, _ := NewCitySignature("", ModeHMACSHA1, "base64", []string{"key"})
	shared, _ := NewCitySignature("", ModeShared, "hex", []string{"key"})
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		h := http.Header{}
		h.Set(DefaultCitySignatureHeader, sig)
		for _, v := range []*CitySignature{hexV, b64V, shared} {
			if v.Verify(Request{Header: h.Get, Body: body}) != nil {
				continue
			}
			// Only the right signature may pass.
			presented := strings.TrimSpace(h.Get(DefaultCitySignatureHeader))
			if v.Mode == ModeShared {
				if presented != "key" {
					t.Fatalf("shared mode accepted %q", sig)
				}
				continue
			}
			if got, _ := v.decode(presented); !hmac.Equal(got, v.Sign([]byte("key"), body)) {
				t.Fatalf("%s accepted %q for body %q", v.Mode, sig, body)
			}
		}
	})
}

func BenchmarkCitySignatureHMAC(b *testing.B) {
	v, _ := NewCitySignature("", ModeHMACSHA256, "hex", []string{"current", "previous"})
	body := make([]byte, 1400)
	h := http.Header{}
	h.Set(DefaultCitySignatureHeader, v.Encode(v.Sign([]byte("previous"), body)))
	r := Request{Header: h.Get, Body: body}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBasic(b *testing.B) {
	v, _ := NewBasic("controlshift", []string{"current", "previous"})
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("controlshift:current")))
	r := Request{Header: h.Get}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
