//go:build integration

package acceptance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookpipe/hookpipe/plugins/examples"
	"github.com/hookpipe/hookpipe/tests/harness"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
	file string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, dir: t.TempDir()}
	ca.file = writePEM(t, ca.dir, name+"-ca.pem", "CERTIFICATE", der)
	return ca
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue signs a leaf: a server certificate for 127.0.0.1 or a client one.
// It returns the key pair and its PEM files.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile := writePEM(t, ca.dir, cn+".pem", "CERTIFICATE", der)
	keyFile := writePEM(t, ca.dir, cn+"-key.pem", "PRIVATE KEY", keyDER)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certFile, keyFile
}

func httpsClient(ca *x509.Certificate, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	conf := &tls.Config{RootCAs: pool}
	if cert != nil {
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
}

// The quickstart served over HTTPS from its environment variables, with a
// client CA: providers without a certificate still deliver, a certificate
// from the CA is accepted, one from elsewhere fails the handshake, and the
// health checks answer over TLS without one.
func TestQuickstartOverTLS(t *testing.T) {
	ca := newTestCA(t, "hookpipe-acceptance")
	_, serverCert, serverKey := ca.issue(t, "hookpipe", true)
	sender, _, _ := ca.issue(t, "sender", false)
	rogue, _, _ := newTestCA(t, "rogue").issue(t, "sender", false)

	db := filepath.Join(t.TempDir(), "hookpipe.db")
	hp := harness.StartHookpipe(t, "configs/quickstart.yaml",
		"HOOKPIPE_SQLITE_DSN=file:"+db,
		"HOOKPIPE_ARCHIVE_DIR="+t.TempDir(),
		"CONTROLSHIFT_PASSWORD="+csPassword,
		"THECITY_SECRET="+citySecret,
		"HOOKPIPE_TLS_ENABLED=true",
		"HOOKPIPE_TLS_CERT_FILE="+serverCert,
		"HOOKPIPE_TLS_KEY_FILE="+serverKey,
		"HOOKPIPE_TLS_CLIENT_CA_FILE="+ca.file,
	)
	base := "https://" + strings.TrimPrefix(hp.URL, "http://")
	all := examples.All()

	deliver := func(c *http.Client, e examples.Example) (int, error) {
		path, hdr := providerAuth(e)
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(e.Body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	if status, err := deliver(httpsClient(ca.cert, nil), all[0]); err != nil || status != 200 {
		t.Fatalf("over TLS without a client certificate: %d %v\n%s", status, err, harness.TailFile(hp.LogPath, 3000))
	}
	if status, err := deliver(httpsClient(ca.cert, &sender), all[1]); err != nil || status != 200 {
		t.Fatalf("with a client certificate from the CA: %d %v", status, err)
	}
	if status, err := deliver(httpsClient(ca.cert, &rogue), all[2]); err == nil {
		t.Fatalf("a client certificate from another CA got an answer: %d", status)
	}
	// Plain HTTP on the TLS port gets no webhook answer.
	path, hdr := providerAuth(all[3])
	if status, _ := hp.Post(t, path, all[3].Body, hdr); status == 200 {
		t.Fatal("plain HTTP was accepted on the TLS listener")
	}
	// Readiness over TLS, without a certificate (it turns 200 once the
	// first sink probe round after start has seen the outputs connected).
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := httpsClient(ca.cert, nil).Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz over TLS stayed %d", res.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := count(t, db, "events"); n != 2 {
		t.Fatalf("%d events stored, want the 2 delivered over TLS", n)
	}
}
