package hub

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sizes of IoT Hub's served chain (spec/catm-model.md §3.3, [CSU-164],
// [SDKC-931]): a 1,787-byte RSA-2048 leaf with a long SAN list and a
// 1,456-byte "Microsoft Azure RSA TLS Issuing CA", 3,264 bytes of Certificate
// message in all. The emulator pads its own chain to the same sizes so that TLS
// handshake byte counts are those a device pays against the real hub.
const (
	realLeafDER         = 1787
	realIntermediateDER = 1456
)

// Chain is the emulator's certificate authority and served chain.
type Chain struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	Leaf         tls.Certificate // leaf + intermediate, as served
	RootPEM      []byte
}

// CertPool holds the chain's root, for clients.
func (c *Chain) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Root)
	return p
}

// WriteCAFile writes the root certificate as PEM, for clients that take a CA file.
func (c *Chain) WriteCAFile(path string) error {
	if err := os.WriteFile(path, c.RootPEM, 0o644); err != nil {
		return fmt.Errorf("writing the emulator's CA certificate: %w", err)
	}
	return nil
}

// chainCache reuses chains across hubs in one process: RSA key generation costs
// tens of milliseconds, and tests start many hubs with the same names.
var chainCache sync.Map // key → *Chain

// NewChain makes (or reuses, per process) a root CA, an intermediate and a leaf
// for the given host names and IP addresses, shaped like IoT Hub's: RSA-2048 and
// padded to the real certificates' sizes.
func NewChain(hosts []string) (*Chain, error) {
	hosts = append([]string(nil), hosts...)
	sort.Strings(hosts)
	key := strings.Join(hosts, ",")
	if c, ok := chainCache.Load(key); ok {
		return c.(*Chain), nil
	}
	c, err := newChain(hosts)
	if err != nil {
		return nil, err
	}
	actual, _ := chainCache.LoadOrStore(key, c)
	return actual.(*Chain), nil
}

func newChain(hosts []string) (*Chain, error) {
	now := time.Now()
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	root := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"catmsim"}, CommonName: "catmsim IoT Hub Emulator Root CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("signing the root CA: %w", err)
	}
	root, _ = x509.ParseCertificate(rootDER)

	interKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	interTmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"catmsim"}, CommonName: "catmsim IoT Hub Emulator RSA TLS Issuing CA 01"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// The real issuing CA carries OCSP and CA issuer URLs, CRL points and
		// policies; these play the same part in its size.
		OCSPServer:            []string{"http://ocsp.catmsim.invalid"},
		IssuingCertificateURL: []string{"http://cacerts.catmsim.invalid/catmsim-emulator-root-ca.crt"},
		CRLDistributionPoints: []string{"http://crl3.catmsim.invalid/catmsim-emulator-root-ca.crl", "http://crl4.catmsim.invalid/catmsim-emulator-root-ca.crl"},
	}
	interDER, err := signPadded(interTmpl, root, &interKey.PublicKey, rootKey, realIntermediateDER)
	if err != nil {
		return nil, fmt.Errorf("signing the intermediate CA: %w", err)
	}
	inter, _ := x509.ParseCertificate(interDER)

	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Locality: []string{"Redmond"}, Organization: []string{"catmsim"}, CommonName: firstName(hosts)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		OCSPServer:            []string{"http://ocsp.catmsim.invalid"},
		IssuingCertificateURL: []string{"http://cacerts.catmsim.invalid/catmsim-emulator-rsa-tls-issuing-ca-01.crt"},
		CRLDistributionPoints: []string{"http://crl.catmsim.invalid/catmsim-emulator-rsa-tls-issuing-ca-01.crl"},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leafTmpl.IPAddresses = append(leafTmpl.IPAddresses, ip)
		} else {
			leafTmpl.DNSNames = append(leafTmpl.DNSNames, h)
		}
	}
	// IoT Hub's leaf lists the service's many names; the emulator lists the
	// same kind of names, so the SAN list has the real one's length.
	leafTmpl.DNSNames = append(leafTmpl.DNSNames, "*.azure-devices.net", "*.amqpws.azure-devices.net", "*.su.management-azure-devices.net", "*.azure-devices-provisioning.net")
	leafDER, err := signPadded(leafTmpl, inter, &leafKey.PublicKey, interKey, realLeafDER)
	if err != nil {
		return nil, fmt.Errorf("signing the server certificate: %w", err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return &Chain{
		Root:         root,
		Intermediate: inter,
		Leaf:         tls.Certificate{Certificate: [][]byte{leafDER, interDER}, PrivateKey: leafKey, Leaf: leaf},
		RootPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
	}, nil
}

// oidPadding is a private, non-critical extension that carries filler bytes.
var oidPadding = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 99, 1}

// signPadded signs tmpl and, when the result is smaller than target, signs it
// again with a filler extension that brings it to target bytes (DER lengths
// shift by a byte or two as they grow, so it converges in a few rounds).
func signPadded(tmpl, parent *x509.Certificate, pub any, signer any, target int) ([]byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	pad := target - len(der) - 16
	for i := 0; i < 8 && pad > 0 && len(der) != target; i++ {
		t := *tmpl
		t.ExtraExtensions = append(append([]pkix.Extension(nil), tmpl.ExtraExtensions...), pkix.Extension{Id: oidPadding, Value: mustOctets(pad)})
		der, err = x509.CreateCertificate(rand.Reader, &t, parent, pub, signer)
		if err != nil {
			return nil, err
		}
		pad += target - len(der)
	}
	return der, nil
}

func mustOctets(n int) []byte {
	b, _ := asn1.Marshal(make([]byte, n))
	return b
}

func firstName(hosts []string) string {
	for _, h := range hosts {
		if net.ParseIP(h) == nil {
			return h
		}
	}
	if len(hosts) > 0 {
		return hosts[0]
	}
	return "localhost"
}

func randSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// TLSOptions are the emulator's TLS choices.
type TLSOptions struct {
	// MinVersion and MaxVersion bound the offered versions (default TLS 1.2 to
	// TLS 1.3).
	MinVersion, MaxVersion uint16
	// DisableResumption turns session tickets off, as the real hub ignores them
	// ([CSU-64]); by default resumption works for clients that ask for it.
	DisableResumption bool
}

// ServerTLS is the emulator's server TLS configuration: the padded chain, TLS
// 1.2 and 1.3, and a request (not a demand) for a client certificate, which IoT
// Hub sends in every handshake so that X.509 devices can present theirs.
func (c *Chain) ServerTLS(o TLSOptions) (*tls.Config, error) {
	min, max := o.MinVersion, o.MaxVersion
	if min == 0 {
		min = tls.VersionTLS12
	}
	if max == 0 {
		max = tls.VersionTLS13
	}
	if min > max {
		return nil, errors.New("TLS minimum version is above the maximum")
	}
	return &tls.Config{
		Certificates:           []tls.Certificate{c.Leaf},
		MinVersion:             min,
		MaxVersion:             max,
		ClientAuth:             tls.RequestClientCert,
		SessionTicketsDisabled: o.DisableResumption,
		NextProtos:             []string{"http/1.1"},
	}, nil
}
