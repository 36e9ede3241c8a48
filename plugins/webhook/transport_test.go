package webhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// startInput runs webhook_server with the given config (the fields under
// `webhook_server:`, with %s for the listen address) and pipeline section,
// writing to the recording sink; archive_sink and rejected_sink are available
// as archive outputs. It returns the listen address and what was written.
func startInput(t *testing.T, inputConf, pipeline string) (string, *received) {
	t.Helper()
	addr, got, _ := startInputStream(t, inputConf, pipeline, nil)
	return addr, got
}

// startInputStream is startInput with the stream, for tests that stop it,
// and a hook to register more components in its environment.
func startInputStream(t *testing.T, inputConf, rest string, register func(*service.Environment)) (string, *received, *service.Stream) {
	t.Helper()
	addr := freeAddr(t)
	got := &received{}
	archived, rejectedArchived = &received{}, &received{}
	env := service.NewEnvironment()
	for name, rec := range map[string]*received{"recording_sink": got, "archive_sink": archived, "rejected_sink": rejectedArchived} {
		if err := env.RegisterBatchOutput(name, service.NewConfigSpec(),
			func(*service.ParsedConfig, *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
				return &recordingSink{got: rec}, service.BatchPolicy{}, 1, nil
			}); err != nil {
			t.Fatal(err)
		}
	}
	if register != nil {
		register(env)
	}
	// rest is the pipeline section and, optionally, an output of its own.
	if !strings.Contains(rest, "output:") {
		rest += "\noutput:\n  recording_sink: {}\n"
	}
	stream := startBuilt(t, env, addr, fmt.Sprintf(`
input:
  webhook_server:
%s
%s
`, indent(fmt.Sprintf(inputConf, addr), "    "), rest))
	return addr, got, stream
}

// startBuilt builds and runs a stream from env and yaml and waits until addr
// accepts connections; the stream stops when the test ends.
func startBuilt(t *testing.T, env *service.Environment, addr, yaml string) *service.Stream {
	t.Helper()
	b := env.NewStreamBuilder()
	if err := b.SetYAML(yaml); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLoggerYAML(`level: none`); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }()
	t.Cleanup(func() {
		_ = stream.Stop(context.Background())
		cancel()
		<-done
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return stream
		}
		select {
		case err := <-done:
			t.Fatalf("the stream stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook_server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// pki is a certificate authority made for one test, with what it signed.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key}
	p.caFile = p.write(t, name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue signs a leaf certificate; server certificates are for 127.0.0.1.
func (p *pki) issue(t *testing.T, cn string, server bool, dnsNames ...string) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"hookpipe tests"}},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := p.write(t, cn+".pem", "CERTIFICATE", der)
	keyFile := p.write(t, cn+"-key.pem", "PRIVATE KEY", keyDER)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certFile, keyFile
}

// tlsClient trusts ca and presents cert (none when cert is nil).
func tlsClient(ca *x509.Certificate, cert *tls.Certificate, maxVersion uint16) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	conf := &tls.Config{RootCAs: pool, MaxVersion: maxVersion}
	if cert != nil {
		// Presented whatever CAs the server names, as a hostile client would.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true, DisableKeepAlives: true}}
}

// post sends a JSON body and returns the status, or an error when no HTTP
// answer came (a refused TLS handshake).
func post(client *http.Client, url string, header map[string]string) (int, *http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"type":"x","data":{}}`))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res, nil
}

func TestMutualTLS(t *testing.T) {
	ca := newPKI(t, "hookpipe-test")
	_, serverCert, serverKey := ca.issue(t, "server", true)
	senderA, _, _ := ca.issue(t, "sender-a", false)
	senderB, _, _ := ca.issue(t, "sender-b", false, "b.senders.example")
	rogueCA := newPKI(t, "rogue")
	rogue, _, _ := rogueCA.issue(t, "sender-a", false)

	addr, got := startInput(t, `
address: %s
tls:
  enabled: true
  cert_file: `+serverCert+`
  key_file: `+serverKey+`
  client_ca_file: `+ca.caFile+`
endpoints:
  - path: /open
    provider: test
    auth: { allow_unauthenticated: true }
  - path: /mtls
    provider: test
    require_client_cert: true
    auth: { allow_unauthenticated: true }
  - path: /mtls-named
    provider: test
    require_client_cert: true
    client_cert_names: [ sender-a, b.senders.example ]
    auth: { allow_unauthenticated: true }
  - path: /mtls-only-a
    provider: test
    require_client_cert: true
    client_cert_names: [ sender-a ]
    auth: { allow_unauthenticated: true }
`, "")
	base := "https://" + addr
	anonymous := tlsClient(ca.ca, nil, 0)
	asA := tlsClient(ca.ca, &senderA, 0)
	asB := tlsClient(ca.ca, &senderB, 0)
	asRogue := tlsClient(ca.ca, &rogue, 0)

	cases := []struct {
		name   string
		client *http.Client
		path   string
		status int // 0: the TLS handshake is refused
	}{
		{"no certificate, endpoint without the requirement", anonymous, "/open", 200},
		{"no certificate, mTLS endpoint", anonymous, "/mtls", 401},
		{"no certificate, named mTLS endpoint", anonymous, "/mtls-named", 401},
		{"valid certificate", asA, "/mtls", 200},
		{"valid certificate on an open endpoint", asA, "/open", 200},
		{"certificate named by its CN", asA, "/mtls-named", 200},
		{"certificate named by its DNS name", asB, "/mtls-named", 200},
		{"valid certificate, name not listed", asB, "/mtls-only-a", 403},
		{"certificate from another CA, same CN", asRogue, "/mtls", 0},
		{"certificate from another CA on an open endpoint", asRogue, "/open", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := got.count()
			status, res, err := post(c.client, base+c.path, nil)
			if c.status == 0 {
				if err == nil {
					t.Fatalf("status %d: the handshake should have been refused", status)
				}
				if got.count() != before {
					t.Fatal("a refused handshake wrote a message")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != c.status {
				t.Fatalf("status %d, want %d", status, c.status)
			}
			if res.Proto != "HTTP/1.1" {
				t.Errorf("protocol %s, want HTTP/1.1", res.Proto)
			}
			if (status == 200) != (got.count() == before+1) {
				t.Errorf("status %d but %d messages written", status, got.count()-before)
			}
		})
	}

	// The verified certificate's subject is in metadata.
	if _, _, err := post(asA, base+"/mtls", nil); err != nil {
		t.Fatal(err)
	}
	got.mu.Lock()
	last := got.msgs[len(got.msgs)-1]
	got.mu.Unlock()
	if s, _ := last.MetaGet("webhook_client_cert_subject"); !strings.Contains(s, "CN=sender-a") {
		t.Errorf("webhook_client_cert_subject = %q", s)
	}

	// Health checks need no certificate.
	res, err := anonymous.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("/healthz without a certificate: %d", res.StatusCode)
	}

	// Plain HTTP on the TLS port gets no webhook reply.
	if status, _, err := post(http.DefaultClient, "http://"+addr+"/open", nil); err == nil && status != http.StatusBadRequest {
		t.Errorf("plain HTTP on the TLS port: %d", status)
	}
}

func TestTLSMinVersion(t *testing.T) {
	ca := newPKI(t, "hookpipe-test")
	_, serverCert, serverKey := ca.issue(t, "server", true)
	addr, _ := startInput(t, `
address: %s
tls:
  enabled: true
  cert_file: `+serverCert+`
  key_file: `+serverKey+`
  min_version: "1.3"
endpoints:
  - path: /open
    provider: test
    auth: { allow_unauthenticated: true }
`, "")
	if _, _, err := post(tlsClient(ca.ca, nil, tls.VersionTLS12), "https://"+addr+"/open", nil); err == nil {
		t.Error("a TLS 1.2 client was accepted with min_version 1.3")
	}
	if status, res, err := post(tlsClient(ca.ca, nil, 0), "https://"+addr+"/open", nil); err != nil || status != 200 || res.TLS.Version != tls.VersionTLS13 {
		t.Errorf("a TLS 1.3 client: status %d, err %v", status, err)
	}
}

// readClientIP posts to path with the given X-Forwarded-For lines and returns
// the status and the webhook_client_ip of what was written ("" if nothing).
func readClientIP(t *testing.T, addr, path string, got *received, xff ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	before := got.count()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got.count() == before {
		return res.StatusCode, ""
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	ip, _ := got.msgs[len(got.msgs)-1].MetaGet("webhook_client_ip")
	return res.StatusCode, ip
}

const allowlistEndpoints = `
endpoints:
  - path: /open
    provider: test
    auth: { allow_unauthenticated: true }
  - path: /local-only
    provider: test
    allowed_ips: [ 127.0.0.1 ]
    auth: { allow_unauthenticated: true }
  - path: /provider-range
    provider: test
    allowed_ips: [ "203.0.113.0/24, 2001:db8::/32" ]
    auth: { allow_unauthenticated: true }
`

// Without trusted proxies the client is the peer, whatever
// X-Forwarded-For says: a spoofed header opens no allowlist.
func TestAllowlistWithoutProxies(t *testing.T) {
	addr, got := startInput(t, "address: %s"+allowlistEndpoints, "")
	for _, c := range []struct {
		name   string
		path   string
		xff    []string
		status int
		ip     string
	}{
		{"open endpoint", "/open", nil, 200, "127.0.0.1"},
		{"peer in the list", "/local-only", nil, 200, "127.0.0.1"},
		{"peer not in the list", "/provider-range", nil, 403, ""},
		{"spoofed X-Forwarded-For is ignored", "/provider-range", []string{"203.0.113.5"}, 403, ""},
		{"X-Forwarded-For does not change the client", "/open", []string{"203.0.113.5"}, 200, "127.0.0.1"},
	} {
		status, ip := readClientIP(t, addr, c.path, got, c.xff...)
		if status != c.status || ip != c.ip {
			t.Errorf("%s: status %d client %q, want %d %q", c.name, status, ip, c.status, c.ip)
		}
	}
}

// Behind a trusted proxy (here: the loopback peer) the client is the
// rightmost X-Forwarded-For address that is not itself a trusted proxy.
func TestAllowlistThroughTrustedProxies(t *testing.T) {
	addr, got := startInput(t, `address: %s
trusted_proxies: [ "127.0.0.1", "10.0.0.0/8", "${UNSET_PROXY_VARIABLE:}" ]`+allowlistEndpoints, "")
	for _, c := range []struct {
		name   string
		path   string
		xff    []string
		status int
		ip     string
	}{
		{"no header: the proxy itself", "/open", nil, 200, "127.0.0.1"},
		{"one hop", "/provider-range", []string{"203.0.113.5"}, 200, "203.0.113.5"},
		{"trusted hops are skipped", "/provider-range", []string{"203.0.113.5, 10.1.2.3"}, 200, "203.0.113.5"},
		{"several header lines are one list", "/provider-range", []string{"203.0.113.5", "10.1.2.3"}, 200, "203.0.113.5"},
		{"a spoofed leftmost entry is not the client", "/provider-range", []string{"203.0.113.5, 198.51.100.7"}, 403, ""},
		{"the client the proxy saw", "/open", []string{"203.0.113.5, 198.51.100.7"}, 200, "198.51.100.7"},
		{"port and IPv6", "/provider-range", []string{"[2001:db8::1]:4711"}, 200, "2001:db8::1"},
		{"address with port", "/open", []string{"198.51.100.7:80"}, 200, "198.51.100.7"},
		{"garbage ends the walk at the proxy", "/provider-range", []string{"203.0.113.5, not-an-address"}, 403, ""},
		{"garbage: the client is the proxy", "/open", []string{"not-an-address"}, 200, "127.0.0.1"},
		{"only trusted hops: the leftmost", "/open", []string{"10.9.9.9, 10.1.1.1"}, 200, "10.9.9.9"},
		{"local endpoint through the proxy", "/local-only", []string{"203.0.113.5"}, 403, ""},
	} {
		status, ip := readClientIP(t, addr, c.path, got, c.xff...)
		if status != c.status || ip != c.ip {
			t.Errorf("%s: status %d client %q, want %d %q", c.name, status, ip, c.status, c.ip)
		}
	}
}

// A refused address is answered before anything else: no body is read and
// nothing written, even for requests that would otherwise fail differently.
func TestAllowlistComesFirst(t *testing.T) {
	addr, got := startInput(t, "address: %s"+allowlistEndpoints, "")
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/provider-range", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 403 || body["error"] != "client address not allowed" || got.count() != 0 {
		t.Fatalf("GET from a refused address: %d %v", res.StatusCode, body)
	}
}

func TestTransportConfigErrors(t *testing.T) {
	ca := newPKI(t, "hookpipe-test")
	_, serverCert, serverKey := ca.issue(t, "server", true)
	for name, c := range map[string]struct{ conf, want string }{
		"client cert without tls": {`
endpoints:
  - { path: /a, provider: x, require_client_cert: true, auth: { allow_unauthenticated: true } }
`, "tls is not enabled"},
		"client cert without a CA": {`
tls: { enabled: true, cert_file: ` + serverCert + `, key_file: ` + serverKey + ` }
endpoints:
  - { path: /a, provider: x, require_client_cert: true, auth: { allow_unauthenticated: true } }
`, "client_ca_file is empty"},
		"names without the requirement": {`
endpoints:
  - { path: /a, provider: x, client_cert_names: [ a ], auth: { allow_unauthenticated: true } }
`, "client_cert_names needs require_client_cert"},
		"missing key file": {`
tls: { enabled: true, cert_file: ` + serverCert + ` }
endpoints:
  - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, "cert_file and key_file are required"},
		"unreadable certificate": {`
tls: { enabled: true, cert_file: /nonexistent.pem, key_file: ` + serverKey + ` }
endpoints:
  - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, "loading the server certificate"},
		"CA file without certificates": {`
tls: { enabled: true, cert_file: ` + serverCert + `, key_file: ` + serverKey + `, client_ca_file: ` + serverKey + ` }
endpoints:
  - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, "holds no PEM certificate"},
		"bad allowlist entry": {`
endpoints:
  - { path: /a, provider: x, allowed_ips: [ "10.0.0.0/33" ], auth: { allow_unauthenticated: true } }
`, "allowed_ips"},
		"allowlist of unset variables": {`
endpoints:
  - { path: /a, provider: x, allowed_ips: [ "${UNSET_ALLOWLIST_VARIABLE:}" ], auth: { allow_unauthenticated: true } }
`, "allowed_ips: empty entry"},
		"bad TLS version": {`
tls: { enabled: true, cert_file: ` + serverCert + `, key_file: ` + serverKey + `, min_version: "1.1" }
endpoints:
  - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, "must be 1.2 or 1.3"},
		"bad proxy": {`
trusted_proxies: [ proxy.example ]
endpoints:
  - { path: /a, provider: x, auth: { allow_unauthenticated: true } }
`, "neither an address nor a CIDR range"},
		"health path taken by an endpoint": {`
endpoints:
  - { path: /readyz, provider: x, auth: { allow_unauthenticated: true } }
`, "health path /readyz is served by endpoint"},
	} {
		t.Run(name, func(t *testing.T) {
			err := runConfigError(t, "webhook_server:\n"+indent(c.conf, "  "))
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// runConfigError builds and runs an input config that must fail, and
// returns its error.
func runConfigError(t *testing.T, conf string) error {
	t.Helper()
	b := service.NewStreamBuilder()
	_ = b.SetLoggerYAML(`level: none`)
	if err := b.AddInputYAML(conf); err != nil {
		return err
	}
	if err := b.AddOutputYAML(`drop: {}`); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = stream.Run(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("config accepted (run ended with %v)", err)
	}
	return err
}
