package protocols

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

func TestTokensRenewNearExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 400e6) // not on a second, as se truncates
	cfg := Config{HostName: "h", Auth: Credentials{Key: []byte("k"), TokenTTL: 10 * time.Second, RenewAt: 0.5}, Now: func() time.Time { return now }}
	tk := cfg.NewTokens(sas.DeviceResource("h", "d", ""))
	if !tk.Renewable() {
		t.Fatal("signed tokens are renewable")
	}
	first := tk.Current()
	parsed, err := sas.ParseToken(first)
	if err != nil {
		t.Fatal(err)
	}
	// se = 1800000010; half of the 9.6 s left is 4.8 s.
	if parsed.Expiry.Unix() != 1_800_000_010 {
		t.Fatalf("expiry %v", parsed.Expiry)
	}
	tests := []struct {
		name  string
		after time.Duration
		same  bool
	}{
		{"well before the renewal point", 4 * time.Second, true},
		{"just before it", 4799 * time.Millisecond, true},
		{"at it", 4800 * time.Millisecond, false},
	}
	base := now
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = base.Add(tt.after)
			if got := tk.Current(); (got == first) != tt.same {
				t.Fatalf("after %s: same token %v, want %v", tt.after, got == first, tt.same)
			}
		})
	}
}

func TestReadyMadeTokenIsKept(t *testing.T) {
	cfg := Config{Auth: Credentials{Token: "SharedAccessSignature sr=h&sig=x&se=1"}}
	tk := cfg.NewTokens("h")
	if tk.Renewable() {
		t.Fatal("a ready-made token cannot be renewed")
	}
	if tok, renew := tk.Fresh(); tok != cfg.Auth.Token || !renew.IsZero() || tk.Current() != cfg.Auth.Token {
		t.Fatalf("got %q, renewal %v", tok, renew)
	}
	if (&Config{Auth: Credentials{Certificate: &tls.Certificate{}}}).NewTokens("h") != nil {
		t.Fatal("a certificate device has no tokens")
	}
}

func TestTLSConfig(t *testing.T) {
	cert := tls.Certificate{}
	tests := []struct {
		name  string
		cfg   Config
		check func(*tls.Config) error
	}{
		{"defaults", Config{HostName: "hub.example"}, func(c *tls.Config) error {
			if c.ServerName != "hub.example" || c.MinVersion != tls.VersionTLS12 || c.MaxVersion != tls.VersionTLS13 ||
				!c.SessionTicketsDisabled || c.ClientSessionCache != nil || len(c.Certificates) != 0 {
				return fmt.Errorf("%+v", c)
			}
			if len(c.CurvePreferences) != 2 || c.CurvePreferences[0] != tls.X25519 || c.CurvePreferences[1] != tls.CurveP256 {
				return fmt.Errorf("curves %v: a post-quantum share would triple the ClientHello", c.CurvePreferences)
			}
			return nil
		}},
		{"TLS 1.2 only with resumption and a certificate", Config{HostName: "h", TLS: TLSOptions{MaxVersion: tls.VersionTLS12, Resumption: true, ServerName: "other"},
			Auth: Credentials{Certificate: &cert}}, func(c *tls.Config) error {
			if c.MaxVersion != tls.VersionTLS12 || c.ClientSessionCache == nil || c.SessionTicketsDisabled || c.ServerName != "other" || len(c.Certificates) != 1 {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(tt.cfg.TLSConfig()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckNamesEveryBadField(t *testing.T) {
	cfg := Config{QoS: 2, Identity: iothub.Identity{DeviceID: "a b"}, Address: "nope", Auth: Credentials{RenewAt: 2, TokenTTL: -1},
		TLS: TLSOptions{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS12}}
	err := cfg.CheckCommon()
	for _, field := range []string{"HostName:", "Dialer:", "Identity.DeviceID:", "QoS:", "Auth.RenewAt:", "Auth.TokenTTL:", "TLS.MinVersion:", "Address:"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
	if err := (&Config{}).CheckIoTHubAuth(); err == nil || !strings.HasPrefix(err.Error(), "config.Auth:") {
		t.Errorf("no credentials: %v", err)
	}
}

func TestAddr(t *testing.T) {
	if got := (&Config{HostName: "h.example"}).Addr(PortMQTT); got != "h.example:8883" {
		t.Fatal(got)
	}
	if got := (&Config{HostName: "h", Address: "127.0.0.1:1"}).Addr(PortMQTT); got != "127.0.0.1:1" {
		t.Fatal(got)
	}
}

// A hub error wrapped by a client is matched by its kind.
func ExampleWrap() {
	err := Wrap("send", iothub.Errorf(iothub.CodeThrottled, "slow down"))
	fmt.Println(err)
	fmt.Println(errors.Is(err, ErrThrottled), errors.Is(err, ErrUnauthorized))
	// Output:
	// send: throttled: ThrottlingException: slow down
	// true false
}
