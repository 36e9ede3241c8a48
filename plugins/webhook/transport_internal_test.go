package webhook

import (
	"net/http"
	"testing"
)

// Peers and forwarded addresses the loopback tests cannot produce: IPv6
// peers, IPv4-mapped IPv6 peers and ranges.
func TestClientAddr(t *testing.T) {
	trusted, err := parsePrefixes("trusted_proxies", []string{"::ffff:10.0.0.0/104", "fd00::/8"}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"[2001:db8::7]:443", []string{"203.0.113.5"}, "2001:db8::7"},     // untrusted IPv6 peer
		{"[::ffff:10.1.2.3]:443", []string{"203.0.113.5"}, "203.0.113.5"}, // mapped peer in a mapped range
		{"10.1.2.3:443", []string{"203.0.113.5, fd00::1"}, "203.0.113.5"},
		{"[fd00::2]:80", []string{"2001:db8::1, ::ffff:10.9.9.9"}, "2001:db8::1"},
		{"[fd00::2]:80", nil, "fd00::2"},
		{"not an address", []string{"203.0.113.5"}, "invalid IP"},
	} {
		req := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, v := range c.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddr(req, trusted).String(); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %v: client %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := parsePrefixes("allowed_ips", []string{"203.0.113.7", "10.0.0.0/8, 2001:db8::/32", " ::ffff:192.0.2.0/120 "}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32", "192.0.2.0/24"}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"", "10.0.0.0/40", "example.com", "10.0.0.1-10.0.0.9"} {
		if _, err := parsePrefixes("allowed_ips", []string{bad}, false); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
