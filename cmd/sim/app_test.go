package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type result struct {
	code           int
	stdout, stderr string
}

func runSim(t *testing.T, environ []string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, environ, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// vector is one signing case of the package sas vectors, which Python's standard
// library computed independently of this code.
type vector struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	Key   string `json:"key"`
	Now   int64  `json:"now"`
	Sign  *struct {
		Resource string `json:"resource"`
		Expiry   int64  `json:"expiry"`
		KeyName  string `json:"keyName"`
	} `json:"sign"`
}

func vectors(t *testing.T) map[string]vector {
	t.Helper()
	b, err := os.ReadFile("../../sas/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []vector }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	m := map[string]vector{}
	for _, c := range f.Cases {
		m[c.Name] = c
	}
	return m
}

func TestSASTokenMatchesIndependentVectors(t *testing.T) {
	v := vectors(t)
	tests := []struct {
		vector string
		cs     string
		flags  []string
	}{
		{"device", "HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=%KEY%", nil},
		{"module", "HostName=myhub.azure-devices.net;DeviceId=dev1;ModuleId=mod-a;SharedAccessKey=%KEY%", nil},
		{"policy", "HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=%KEY%", nil},
		{"upper_case_host", "HostName=MyHub.Azure-Devices.NET;DeviceId=Dev1;SharedAccessKey=%KEY%", nil},
		{"device_id_special_chars", "HostName=myhub.azure-devices.net;DeviceId=Pump-07.b+c:1@x$y'z(1)*!,=;SharedAccessKey=%KEY%", nil},
		{"event_hubs", "Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=%KEY%;EntityPath=telemetry", nil},
		{"micropython_epoch_2000_fixed", "HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=%KEY%", nil},
	}
	for _, tt := range tests {
		t.Run(tt.vector, func(t *testing.T) {
			c, ok := v[tt.vector]
			if !ok || c.Sign == nil {
				t.Fatalf("no signing vector %q", tt.vector)
			}
			cs := strings.ReplaceAll(tt.cs, "%KEY%", c.Key)
			// Device ids may hold '=' and other punctuation but never ';'.
			args := append([]string{"sas", "token", "--connection-string", cs, "--expiry", itoa(c.Sign.Expiry)}, tt.flags...)
			r := runSim(t, nil, "", args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if got := strings.TrimSpace(r.stdout); got != c.Token {
				t.Fatalf("token\n got %s\nwant %s", got, c.Token)
			}
		})
	}
}

func TestSASTokenFromEnvironmentWithTTL(t *testing.T) {
	c := vectors(t)["device"]
	env := []string{envConnectionString + "=HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=" + c.Key}
	r := runSim(t, env, "", "sas", "token", "--ttl", "1h", "--now", itoa(c.Sign.Expiry-3600), "-v")
	if r.code != 0 || strings.TrimSpace(r.stdout) != c.Token {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "in 1h0m0s") || !strings.Contains(r.stderr, "epoch-2000") {
		t.Errorf("--verbose does not explain the expiry: %s", r.stderr)
	}
}

func TestSASVerify(t *testing.T) {
	v := vectors(t)
	good := v["device"]
	flipped := []byte(good.Token)
	i := strings.Index(good.Token, "sig=") + 4
	flipped[i] ^= 0x01 // one character of the signature changed
	tests := []struct {
		name   string
		args   []string
		env    []string
		stdin  string
		code   int
		stdout []string
	}{
		{"valid", []string{"--token", good.Token, "--key", good.Key}, nil, "", 0, []string{"token is VALID", "signature  ok", "valid for another 1h0m0s"}},
		{"one character changed", []string{"--token", string(flipped), "--key", good.Key}, nil, "", 1, []string{"token is INVALID", "signature  FAIL"}},
		{"key as text", []string{"--token", v["key_as_text"].Token, "--key", good.Key}, nil, "", 1, []string{"base64 text instead of its decoded bytes"}},
		{"epoch 2000", []string{"--token", v["micropython_epoch_2000_bug"].Token, "--key", good.Key}, nil, "", 1, []string{"expiry     FAIL: expired 30 years ago", "add 946684800"}},
		{"other device", []string{"--token", v["other_device"].Token, "--key", good.Key, "--resource", "myhub.azure-devices.net/devices/dev1"}, nil, "", 1, []string{"scope      FAIL", "does not cover myhub.azure-devices.net/devices/dev1"}},
		{"wrong policy", []string{"--token", v["policy"].Token, "--key", v["policy"].Key, "--policy", "service"}, nil, "", 1, []string{`the key belongs to policy "service" but the token names "iothubowner"`}},
		{"token and key from environment", nil, []string{envToken + "=" + good.Token, envKey + "=" + good.Key}, "", 0, []string{"token is VALID"}},
		{"token from stdin", []string{"--token", "-", "--connection-string", "HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=" + good.Key}, nil, good.Token + "\n", 0, []string{"token is VALID", "scope      ok"}},
		{"malformed", []string{"--token", "sr=x", "--key", good.Key}, nil, "", 1, []string{"lacks the \"SharedAccessSignature \" prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"sas", "verify", "--now", itoa(good.Now)}, tt.args...)
			r := runSim(t, tt.env, tt.stdin, args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	key := vectors(t)["device"].Key
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown flag", []string{"sas", "token", "--bogus"}, "unknown flag"},
		{"no connection string", []string{"sas", "token"}, "set " + envConnectionString},
		{"garbled connection string", []string{"sas", "token", "-c", "HostName=h;DeviceId=d"}, "SharedAccessKey is missing"},
		{"x509 device", []string{"sas", "token", "-c", "HostName=h;DeviceId=d;x509=true"}, "X.509"},
		{"ttl and expiry", []string{"sas", "token", "-c", "HostName=h;DeviceId=d;SharedAccessKey=" + key, "--ttl", "1h", "--expiry", "5"}, "ttl expiry"},
		{"verify without key", []string{"sas", "verify", "--token", "x"}, "no key"},
		{"bad key", []string{"sas", "verify", "--token", "x", "--key", "***"}, "not valid base64"},
		{"unknown command", []string{"fly"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSim(t, nil, "", tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr lacks %q: %s", tt.stderr, r.stderr)
			}
			if strings.Contains(r.stderr, key) {
				t.Errorf("stderr shows the key: %s", r.stderr)
			}
		})
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"sas", "token", "--help"}, {"sas", "verify", "--help"}, {"run", "--help"}, {"hub", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runSim(t, nil, "", args...)
			if r.code != 0 || !strings.Contains(r.stdout, "Examples:") {
				t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// syncWriter lets a test read what a running command logs.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// signalWriter collects what a running command writes and closes seen once
// the text contains want, so a test can wait for output without polling.
type signalWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
}

func newSignalWriter(want string) *signalWriter {
	return &signalWriter{want: want, seen: make(chan struct{})}
}

func (s *signalWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.buf.Write(p)
	if s.want != "" && strings.Contains(s.buf.String(), s.want) {
		close(s.seen)
		s.want = ""
	}
	return n, err
}

func (s *signalWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
