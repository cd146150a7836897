package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/sas"
)

// TestHubCommandAMQP starts `sim hub` with an AMQP port of its choosing and
// sends one message with the printed connection string's key over AMQP with
// SASL PLAIN.
func TestHubCommandAMQP(t *testing.T) {
	dir := t.TempDir()
	info, ca := filepath.Join(dir, "hub.json"), filepath.Join(dir, "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"hub", "--mqtt-port", "-1", "--amqp-port", "0", "--https-port", "0", "--metrics-port", "-1", "--info", info, "--ca-file", ca, "--device", "amqp-dev"},
			[]string{envGroupKey + "=+vv8/f7/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk="}, strings.NewReader(""), pw, &syncWriter{w: &stderr})
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	var banner []string
	for sc.Scan() {
		banner = append(banner, sc.Text())
		if strings.Contains(sc.Text(), "Press Ctrl-C") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	out := strings.Join(banner, "\n")
	for _, want := range []string{"AMQP  ", "amqps://127.0.0.1:", "AMQP/WebSocket", "GatewayHostName=127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("banner lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(info)
	if err != nil {
		t.Fatal(err)
	}
	var hi hubInfo
	if err := json.Unmarshal(b, &hi); err != nil {
		t.Fatal(err)
	}
	cs, err := sas.Parse(hi.Devices["amqp-dev"])
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tok, _ := sas.TokenFor(cs, time.Now().Add(time.Hour))
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	c, err := amqp.Dial(dctx, hi.Endpoints.AMQP, &amqp.ConnOptions{
		SASLType:  amqp.SASLTypePlain("amqp-dev@sas."+strings.Split(cs.HostName, ".")[0], tok),
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: cs.HostName},
	})
	if err != nil {
		t.Fatalf("connecting to %s: %v", hi.Endpoints.AMQP, err)
	}
	sess, err := c.NewSession(dctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := sess.NewSender(dctx, "/devices/amqp-dev/messages/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(dctx, amqp.NewMessage([]byte("hi over amqp")), nil); err != nil {
		t.Fatalf("send: %v", err)
	}
	c.Close()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sim hub did not stop")
	}
	if !strings.Contains(stderr.String(), "protocol=amqp") {
		t.Errorf("log lacks the AMQP message:\n%s", stderr.String())
	}
}
