package sas

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// registry is a Keys with two policies and two devices, each with primary and
// secondary keys.
type registry struct {
	policies map[string][][]byte
	devices  map[string][][]byte
}

func (r registry) PolicyKeys(n string) ([][]byte, bool) { k, ok := r.policies[n]; return k, ok }
func (r registry) IdentityKeys(d, m string) ([][]byte, bool) {
	k, ok := r.devices[d+"/"+m]
	return k, ok
}

var (
	k1 = []byte("primary-key-0123456789abcdefghij")
	k2 = []byte("secondary-key-0123456789abcdefgh")
	k3 = []byte("policy-key-0123456789abcdefghijk")
)

func testRegistry() registry {
	return registry{
		policies: map[string][][]byte{"iothubowner": {k3}, "device": {k3}},
		devices:  map[string][][]byte{"dev1/": {k1, k2}, "dev1/mod": {k2}},
	}
}

func TestVerifier(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Hour)
	const h = "hub.azure-devices.net"
	tests := []struct {
		name     string
		token    string
		resource string
		want     error
	}{
		{"primary key", Sign(h+"/devices/dev1", k1, "", exp), h + "/devices/dev1", nil},
		{"secondary key", Sign(h+"/devices/dev1", k2, "", exp), h + "/devices/dev1", nil},
		{"module", Sign(h+"/devices/dev1/modules/mod", k2, "", exp), h + "/devices/dev1/modules/mod", nil},
		{"device token covers a deeper path", Sign(h+"/devices/dev1", k1, "", exp), h + "/devices/dev1/messages/events", nil},
		{"fixed words any case", Sign(h+"/Devices/dev1", k1, "", exp), h + "/devices/dev1/messages/deviceBound", nil},
		{"device token does not cover its module", Sign(h+"/devices/dev1/modules/mod", k2, "", exp), h + "/devices/dev1", ErrWrongResource},
		{"policy", Sign(h, k3, "iothubowner", exp), h + "/devices/dev1", nil},
		{"unknown policy", Sign(h, k3, "nobody", exp), h, ErrUnknownPolicy},
		{"unknown device", Sign(h+"/devices/dev9", k1, "", exp), h + "/devices/dev9", ErrUnknownIdentity},
		{"no identity and no skn", Sign(h, k1, "", exp), h, ErrMalformed},
		{"wrong key", Sign(h+"/devices/dev1", k3, "", exp), h + "/devices/dev1", ErrBadSignature},
		{"expired", Sign(h+"/devices/dev1", k1, "", now.Add(-time.Second)), h + "/devices/dev1", ErrExpired},
		{"other hub", Sign("other.azure-devices.net/devices/dev1", k1, "", exp), h + "/devices/dev1", ErrWrongResource},
		{"garbage", "Bearer abc", h, ErrMalformed},
	}
	v := Verifier{Keys: testRegistry(), Now: func() time.Time { return now }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token, tt.resource)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	errs := []error{&MalformedError{}, &SignatureError{}, &ExpiredError{}, &ResourceError{}, &UnknownPolicyError{}, &UnknownIdentityError{}}
	sentinels := []error{ErrMalformed, ErrBadSignature, ErrExpired, ErrWrongResource, ErrUnknownPolicy, ErrUnknownIdentity}
	for i, e := range errs {
		for j, s := range sentinels {
			if errors.Is(e, s) != (i == j) {
				t.Errorf("errors.Is(%T, %v) = %v", e, s, i != j)
			}
		}
	}
}

func TestOneCharacterChanged(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok := Sign("hub/devices/dev1", k1, "", now.Add(time.Hour))
	v := Verifier{Keys: StaticKey(k1), Now: func() time.Time { return now }}
	if _, err := v.Verify(tok, ""); err != nil {
		t.Fatal(err)
	}
	// Flip every character of the signature, resource and expiry in turn: each
	// change must be caught.
	for i := len("SharedAccessSignature "); i < len(tok); i++ {
		c := tok[i]
		if c == '&' || c == '=' || c == '%' {
			continue
		}
		repl := byte('A')
		if c == 'A' {
			repl = 'B'
		}
		if c >= '0' && c <= '9' {
			repl = '0' + (c-'0'+1)%10
		}
		changed := tok[:i] + string(repl) + tok[i+1:]
		if _, err := v.Verify(changed, ""); err == nil {
			t.Errorf("changing byte %d (%q→%q) still verifies: %s", i, c, repl, changed)
		}
	}
}

func TestSignatureHints(t *testing.T) {
	const sr = "hub%2Fdevices%2Fdev1"
	const se = "1800003600"
	tests := []struct {
		name, sig, hint string
	}{
		{"key as text", Signature(sr, se, []byte(EncodeKey(k1))), "base64 text instead of its decoded bytes"},
		{"signed decoded", Signature("hub/devices/dev1", se, k1), "signed over the decoded resource"},
		{"signed lower case", Signature(strings.ToLower("hub%2Fdevices%2FDev1"), se, k1), ""},
		{"unrelated", Signature(sr, se, k3), "not the one that signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rawSr := sr
			if tt.name == "signed lower case" {
				rawSr = "hub%2Fdevices%2FDev1"
			}
			tok, err := ParseToken("SharedAccessSignature sr=" + rawSr + "&sig=" + Encode(tt.sig) + "&se=" + se)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckSignature(tok, k1)
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("want bad signature, got %v", err)
			}
			want := tt.hint
			if want == "" {
				want = "lower-cased resource"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("hint %q does not say %q", err, want)
			}
		})
	}
}

func TestParseTokenErrors(t *testing.T) {
	tests := []struct{ in, says string }{
		{"", "does not start with"},
		{"sr=a&sig=b&se=1", `lacks the "SharedAccessSignature " prefix`},
		{"SharedAccessSignature ", "no fields"},
		{"SharedAccessSignature sr=a&sig=b", "se is missing"},
		{"SharedAccessSignature sr=a&se=1", "sig is missing"},
		{"SharedAccessSignature sig=b&se=1", "sr is missing"},
		{"SharedAccessSignature sr=a&sig=b&se=soon", "whole seconds"},
		{"SharedAccessSignature sr=a&sig=b&se=-1", "whole seconds"},
		{"SharedAccessSignature sr=a&sig=b&se=1&sr=c", "appears twice"},
		{"SharedAccessSignature sr=a&sig=b&se=1&foo=1", `unknown field "foo"`},
		{"SharedAccessSignature sr=a%2&sig=b&se=1", "broken %-escape"},
		{"SharedAccessSignature sr=&sig=b&se=1", "sr is empty"},
		{"SharedAccessSignature sr=a&sig&se=1", "not name=value"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseToken(tt.in)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want malformed saying %q", err, tt.says)
			}
		})
	}
}

func TestParseTokenFieldOrderIsFree(t *testing.T) {
	a, err := ParseToken("SharedAccessSignature sig=x%2By&se=5&skn=p&sr=h%2Fdevices%2Fd")
	if err != nil {
		t.Fatal(err)
	}
	if a.Resource != "h/devices/d" || a.RawResource != "h%2Fdevices%2Fd" || a.Signature != "x+y" || a.KeyName != "p" || a.Expiry.Unix() != 5 {
		t.Fatalf("parsed %+v", a)
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		aud, res string
		want     bool
	}{
		{"h/devices/d1", "h/devices/d1", true},
		{"h/devices/d1", "h/devices/d1/messages/events", true},
		{"h/devices/d", "h/devices/d1", false},
		{"h", "h/devices/d1", true},
		{"H", "h/devices/d1", true},
		{"h/DEVICES/d1", "h/devices/d1", true},
		{"h/devices/D1", "h/devices/d1", false},
		{"h/devices/d1/", "h/devices/d1", true},
		{"https://h/devices/d1", "h/devices/d1", true},
		{"h/devices/modules/modules/m", "h/devices/modules/modules/m", true},
		{"h/devices/modules/MODULES/m", "h/devices/modules/modules/m", true},
		{"h/devices/Modules", "h/devices/modules", false},
		{"h/devices/d1/messages/events/x", "h/devices/d1/messages/events", false},
		{"", "h", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.aud, tt.res); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.aud, tt.res, got, tt.want)
		}
	}
}

func TestClockHint(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name   string
		expiry int64
		says   string
	}{
		{"epoch 2000", 1_800_000_000 - Epoch2000Offset + 3600, "MicroPython"},
		{"never set", 3600, "never set"},
		{"offset added twice", 1_800_000_000 + Epoch2000Offset + 3600, "already counts from 1970"},
		{"plain expiry", 1_800_000_000 - 60, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClockHint(time.Unix(tt.expiry, 0), now)
			if tt.says == "" && got != "" || !strings.Contains(got, tt.says) {
				t.Errorf("ClockHint = %q, want mention of %q", got, tt.says)
			}
		})
	}
}

func TestTokenSourceUsesItsClock(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 500e6, time.UTC)
	s := TokenSource{Resource: "hub/devices/dev1", Key: k1, TTL: 90 * time.Minute, Now: func() time.Time { return now }}
	tok, exp := s.Token()
	if want := now.Add(90 * time.Minute).Truncate(time.Second); !exp.Equal(want) {
		t.Fatalf("expiry %v, want %v", exp, want)
	}
	v := Verifier{Keys: StaticKey(k1), Now: func() time.Time { return exp }}
	if _, err := v.Verify(tok, "hub/devices/dev1"); err != nil {
		t.Fatal(err)
	}
	v.Now = func() time.Time { return exp.Add(time.Second) }
	if _, err := v.Verify(tok, "hub/devices/dev1"); !errors.Is(err, ErrExpired) {
		t.Fatalf("one second past expiry: %v", err)
	}
}

func TestTokenFor(t *testing.T) {
	c, err := Parse("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=" + testKey + ";EntityPath=hub")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := TokenFor(c, time.Unix(2_000_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyName != "send" || p.Resource != "https://ns.servicebus.windows.net/hub" {
		t.Fatalf("Event Hubs token %+v", p)
	}
}
