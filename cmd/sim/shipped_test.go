package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/catmsim/catmsim/internal/mosquittotest"
	"github.com/catmsim/catmsim/scenarios"
)

// TestShippedScenarios runs every scenario shipped inside sim, shortened with
// --duration, and expects each to pass its own thresholds. The generic-broker
// scenario targets a broker the user runs; here it is mosquitto with client
// certificates, and the file is copied with that broker's address and CA.
func TestShippedScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the shipped scenarios in -short mode: each runs for a minute")
	}
	// Every scenario runs at once: they spend their minute waiting, and
	// t.Parallel would run only GOMAXPROCS of them at a time.
	names := scenarios.Shipped()
	results := make([]result, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		arg := name
		if name == "x509-generic-mqtt" {
			arg = brokerScenario(t, name)
		}
		out := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runSim(t, nil, "", "run", arg, "--duration", "60s", "-q", "-o", out)
		}()
	}
	wg.Wait()
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			if r := results[i]; r.code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// brokerScenario writes a copy of a generic-broker scenario that points at a
// mosquitto started for the test, with its CA as both the broker's and the
// devices' CA.
func brokerScenario(t *testing.T, name string) string {
	b := mosquittotest.Start(t)
	data, err := scenarios.ShippedFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := x509.MarshalECPrivateKey(b.CA.Key)
	if err != nil {
		t.Fatal(err)
	}
	caCert := filepath.Join(dir, "ca.pem")
	caKey := filepath.Join(dir, "ca-key.pem")
	must(t, os.WriteFile(caCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.CA.Cert.Raw}), 0o600))
	must(t, os.WriteFile(caKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key}), 0o600))
	s := regexp.MustCompile(`(?m)^  broker: .*$`).ReplaceAllString(string(data),
		"  broker: mqtts://"+b.Addr+"\n  ca_file: "+caCert+"\n  client_ca_cert: "+caCert+"\n  client_ca_key: "+caKey)
	p := filepath.Join(dir, name+".yaml")
	must(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
