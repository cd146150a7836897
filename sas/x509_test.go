package sas

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestIssueDevice(t *testing.T) {
	now := time.Now()
	ca, err := NewAuthority("catmsim test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := IssueDevice(ca, "dev-x509", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf.Subject.CommonName != "dev-x509" {
		t.Errorf("CN = %q", cert.Leaf.Subject.CommonName)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("CA-issued certificate does not verify: %v", err)
	}
	self, err := IssueDevice(nil, "dev-self", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tp := Thumbprint(self.Leaf)
	if len(tp) != 40 || !SameThumbprint(tp, "  "+tp[:2]+":"+tp[2:]) {
		t.Errorf("thumbprint %q", tp)
	}
	if SameThumbprint(tp, Thumbprint(cert.Leaf)) || SameThumbprint("", "") {
		t.Error("different certificates share a thumbprint")
	}
	if len(ThumbprintSHA256(self.Leaf)) != 64 {
		t.Error("SHA-256 thumbprint length")
	}
}
