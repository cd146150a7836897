package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/catmsim/catmsim/sas"
)

func TestHubCommand(t *testing.T) {
	dir := t.TempDir()
	info, ca := filepath.Join(dir, "hub.json"), filepath.Join(dir, "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"hub", "--mqtt-port", "0", "--https-port", "0", "--info", info, "--ca-file", ca, "--device", "dev-a,dev-b"},
			[]string{envGroupKey + "=+vv8/f7/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk="}, strings.NewReader(""), pw, &syncWriter{w: &stderr})
		pw.Close()
		done <- code
	}()
	// Wait for the banner's last line: the emulator is serving.
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
	for _, want := range []string{"MQTT  ", "mqtts://127.0.0.1:", "wss://127.0.0.1:", "metrics", "HostName=localhost;DeviceId=dev-a;SharedAccessKey=", "GatewayHostName=127.0.0.1:"} {
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
	// The group key fixes every device key.
	devKey := sas.EncodeKey(sas.DeriveKey(mustKey(t, "+vv8/f7/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk="), "dev-b"))
	if !strings.Contains(hi.Devices["dev-b"], "SharedAccessKey="+devKey) || hi.CAFile != ca || !strings.Contains(hi.ServiceConnectionString, "SharedAccessKeyName=iothubowner") {
		t.Fatalf("info %+v", hi)
	}
	// A device connects with the printed connection string and the CA file.
	cs, err := sas.Parse(hi.Devices["dev-b"])
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CA file holds no certificate")
	}
	tok, _ := sas.TokenFor(cs, time.Now().Add(time.Hour))
	opts := paho.NewClientOptions().AddBroker("ssl://" + cs.GatewayHostName).SetClientID("dev-b").
		SetUsername(cs.HostName + "/dev-b/?api-version=2021-04-12").SetPassword(tok).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: cs.HostName}).SetProtocolVersion(4).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	if tk := c.Publish("devices/dev-b/messages/events/", 1, false, "hi"); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("publish: %v", tk.Error())
	}
	c.Disconnect(0)
	// The metrics endpoint shows the message, per device.
	resp, err := http.Get(hi.Endpoints.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `catmsim_hub_device_d2c_messages_total{device="dev-b",protocol="mqtt"} 1`) {
		t.Fatalf("metrics lack the message:\n%s", body)
	}
	cancel() // as Ctrl-C does
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sim hub did not stop")
	}
	if !strings.Contains(stderr.String(), "telemetry") || !strings.Contains(stderr.String(), "device connected") {
		t.Errorf("log lacks the connection or the message:\n%s", stderr.String())
	}
}

func mustKey(t *testing.T, s string) []byte {
	t.Helper()
	k, err := sas.DecodeKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
