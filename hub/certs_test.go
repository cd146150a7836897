package hub

import (
	"crypto/tls"
	"testing"
)

func TestChainHasTheRealHubsSizes(t *testing.T) {
	c, err := NewChain([]string{"test.azure-devices.net", "localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, inter := len(c.Leaf.Certificate[0]), len(c.Leaf.Certificate[1])
	// Within a few bytes of IoT Hub's 1,787-byte leaf and 1,456-byte intermediate.
	if leaf < realLeafDER-4 || leaf > realLeafDER+4 || inter < realIntermediateDER-4 || inter > realIntermediateDER+4 {
		t.Fatalf("leaf %d bytes, intermediate %d bytes", leaf, inter)
	}
	if err := c.Leaf.Leaf.VerifyHostname("test.azure-devices.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.Leaf.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.ServerTLS(TLSOptions{})
	if err != nil || cfg.MinVersion != tls.VersionTLS12 || cfg.MaxVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.RequestClientCert {
		t.Fatalf("server TLS %+v %v", cfg, err)
	}
	again, _ := NewChain([]string{"127.0.0.1", "localhost", "test.azure-devices.net"})
	if again != c {
		t.Error("the same host set made a second chain")
	}
}
