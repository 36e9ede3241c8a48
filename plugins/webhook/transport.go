package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Transport security: TLS and client certificates on the listener, and per
// endpoint an IP allowlist and a client-certificate requirement, with the
// client address taken through trusted proxies.

const (
	fieldTLS              = "tls"
	fieldTLSEnabled       = "enabled"
	fieldTLSCertFile      = "cert_file"
	fieldTLSKeyFile       = "key_file"
	fieldTLSClientCAFile  = "client_ca_file"
	fieldTLSMinVersion    = "min_version"
	fieldTrustedProxies   = "trusted_proxies"
	fieldEPAllowedIPs     = "allowed_ips"
	fieldEPRequireCert    = "require_client_cert"
	fieldEPClientCertName = "client_cert_names"
)

// Metadata keys of the client's address and certificate.
const (
	MetaClientIP          = "webhook_client_ip"
	MetaClientCertSubject = "webhook_client_cert_subject"
)

func transportFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewObjectField(fieldTLS,
			service.NewBoolField(fieldTLSEnabled).Description("Serve HTTPS instead of plain HTTP.").Default(false),
			service.NewStringField(fieldTLSCertFile).Description("The server certificate (PEM), followed by its intermediates.").Default(""),
			service.NewStringField(fieldTLSKeyFile).Description("The server certificate's private key (PEM).").Default(""),
			service.NewStringField(fieldTLSClientCAFile).Description("CA certificates (PEM) that client certificates are checked against. When set, a client may present a certificate: one that does not chain to these CAs fails the TLS handshake, and endpoints with `require_client_cert` accept only requests that presented a valid one. Endpoints without it still accept clients without a certificate, and the health checks never need one.").Default(""),
			service.NewStringField(fieldTLSMinVersion).Description("The oldest TLS version accepted: `1.2` or `1.3`.").Default("1.2"),
		).Description("TLS for the listener (HTTP/1.1 over TLS). Certificates are read at start: restart to pick up renewed ones (a rolling restart loses nothing, see `health`).").Advanced(),
		service.NewStringListField(fieldTrustedProxies).Description("Addresses or CIDR ranges of the proxies and load balancers in front of this listener. Only when the connection comes from one of them is `X-Forwarded-For` read: the client address is then the rightmost address in it that is not itself a trusted proxy. `X-Forwarded-For` from any other peer is ignored, so it cannot be spoofed. The client address is what `allowed_ips` checks and what `webhook_client_ip` holds. Entries may be comma-separated; empty entries are ignored.").Default([]string{}).Example([]string{"10.0.0.0/8", "192.168.1.10"}).Advanced(),
	}
}

func endpointTransportFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringListField(fieldEPAllowedIPs).Description("When not empty, only clients whose address (see `trusted_proxies`) is in one of these addresses or CIDR ranges may use this endpoint; others get 403 before anything else is checked. Entries may be comma-separated.").Default([]string{}).Example([]string{"203.0.113.0/24", "2001:db8::/32"}).Advanced(),
		service.NewBoolField(fieldEPRequireCert).Description("Accept only requests that presented a client certificate valid for `tls.client_ca_file` (mutual TLS); others get 401.").Default(false).Advanced(),
		service.NewStringListField(fieldEPClientCertName).Description("When not empty (with `require_client_cert`), the client certificate's subject common name or one of its DNS names must be in this list; others get 403.").Default([]string{}).Advanced(),
	}
}

// tlsConfig builds the listener's TLS configuration, or nil for plain HTTP.
// needClientCA tells whether an endpoint requires client certificates.
func tlsConfig(conf *service.ParsedConfig, needClientCA bool) (*tls.Config, error) {
	c := conf.Namespace(fieldTLS)
	enabled, err := c.FieldBool(fieldTLSEnabled)
	if err != nil {
		return nil, err
	}
	if !enabled {
		if needClientCA {
			return nil, errors.New("an endpoint sets require_client_cert but tls is not enabled")
		}
		return nil, nil
	}
	certFile, err := c.FieldString(fieldTLSCertFile)
	if err != nil {
		return nil, err
	}
	keyFile, err := c.FieldString(fieldTLSKeyFile)
	if err != nil {
		return nil, err
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: cert_file and key_file are required when tls is enabled")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: loading the server certificate: %w", err)
	}
	minVersion, err := c.FieldString(fieldTLSMinVersion)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	switch minVersion {
	case "1.2":
		cfg.MinVersion = tls.VersionTLS12
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tls: min_version %q must be 1.2 or 1.3", minVersion)
	}
	caFile, err := c.FieldString(fieldTLSClientCAFile)
	if err != nil {
		return nil, err
	}
	if caFile == "" {
		if needClientCA {
			return nil, errors.New("an endpoint sets require_client_cert but tls.client_ca_file is empty")
		}
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls: reading client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: client_ca_file %s holds no PEM certificate", caFile)
	}
	cfg.ClientCAs = pool
	// Optional at the handshake, so endpoints without the requirement and the
	// health checks stay reachable; required per endpoint in ServeHTTP. A
	// certificate that is presented must verify, or the handshake fails.
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	return cfg, nil
}

// parsePrefixes reads addresses and CIDR ranges, comma-separated or one per
// entry. Empty entries are skipped when skipEmpty, else refused: an allowlist
// made of unset variables must not silently allow everyone.
func parsePrefixes(field string, entries []string, skipEmpty bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range entries {
		if strings.TrimSpace(e) == "" {
			if skipEmpty {
				continue
			}
			return nil, fmt.Errorf("%s: empty entry", field)
		}
		for part := range strings.SplitSeq(e, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if strings.Contains(part, "/") {
				p, err := netip.ParsePrefix(part)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", field, err)
				}
				out = append(out, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
				continue
			}
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is neither an address nor a CIDR range", field, part)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// unmappedBits converts the prefix length of an IPv4-mapped IPv6 range
// (::ffff:10.0.0.0/104) to its IPv4 length, so it matches unmapped addresses.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return p.Bits() - 96
	}
	return p.Bits()
}

func containsAddr(prefixes []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
}

// clientAddr is the address of the client a request came from: the peer,
// or, when the peer is a trusted proxy, the rightmost X-Forwarded-For entry
// that is not itself a trusted proxy. An entry that does not parse ends the
// walk at the trusted proxy that added it, so a made-up value is never taken
// for the client.
func clientAddr(req *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(req.RemoteAddr)
	if len(trusted) == 0 || !peer.IsValid() || !containsAddr(trusted, peer) {
		return peer
	}
	hops := req.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a, ok := parseForwarded(entries[j])
			if !ok {
				return client
			}
			client = a
			if !containsAddr(trusted, a) {
				return a
			}
		}
	}
	return client
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// parseForwarded reads one X-Forwarded-For entry: an address, optionally
// with a port ("1.2.3.4:80", "[2001:db8::1]:80").
func parseForwarded(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// transportCheck applies an endpoint's address and certificate rules. It
// returns 0 when the request may go on, else the status and error text.
func (ep *endpoint) transportCheck(req *http.Request, client netip.Addr) (int, string) {
	if len(ep.allowedIPs) > 0 && (!client.IsValid() || !containsAddr(ep.allowedIPs, client)) {
		return http.StatusForbidden, "client address not allowed"
	}
	if !ep.requireCert {
		return 0, ""
	}
	if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 {
		return http.StatusUnauthorized, "client certificate required"
	}
	if len(ep.certNames) > 0 && !certNameAllowed(req.TLS.VerifiedChains[0][0], ep.certNames) {
		return http.StatusForbidden, "client certificate not allowed"
	}
	return 0, ""
}

func certNameAllowed(leaf *x509.Certificate, names []string) bool {
	if slices.Contains(names, leaf.Subject.CommonName) && leaf.Subject.CommonName != "" {
		return true
	}
	for _, n := range leaf.DNSNames {
		if slices.Contains(names, n) {
			return true
		}
	}
	return false
}

// endpointTransportFromConfig reads an endpoint's transport fields.
func (ep *endpoint) transportFromConfig(ec *service.ParsedConfig) error {
	ips, err := ec.FieldStringList(fieldEPAllowedIPs)
	if err != nil {
		return err
	}
	if ep.allowedIPs, err = parsePrefixes(fieldEPAllowedIPs, ips, false); err != nil {
		return err
	}
	if ep.requireCert, err = ec.FieldBool(fieldEPRequireCert); err != nil {
		return err
	}
	if ep.certNames, err = ec.FieldStringList(fieldEPClientCertName); err != nil {
		return err
	}
	if len(ep.certNames) > 0 && !ep.requireCert {
		return fmt.Errorf("%s needs %s: true", fieldEPClientCertName, fieldEPRequireCert)
	}
	return nil
}

// debugWriter sends the HTTP server's own log lines to the engine's log.
type debugWriter struct{ log *service.Logger }

func (d debugWriter) Write(b []byte) (int, error) {
	d.log.Debugf("webhook_server: %s", strings.TrimSpace(string(b)))
	return len(b), nil
}
