package sas

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const testKey = "+vv8/f7/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk="

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		kind Kind
		res  string
		sock string
	}{
		{"device", "HostName=h.azure-devices.net;DeviceId=d1;SharedAccessKey=" + testKey, KindDevice, "h.azure-devices.net/devices/d1", "h.azure-devices.net"},
		{"key names any case, trailing semicolon", "hostname=h;deviceid=d1;sharedaccesskey=" + testKey + ";", KindDevice, "h/devices/d1", "h"},
		{"module", "HostName=h;DeviceId=d1;ModuleId=m1;SharedAccessKey=" + testKey, KindModule, "h/devices/d1/modules/m1", "h"},
		{"gateway", "HostName=h;DeviceId=d1;SharedAccessKey=" + testKey + ";GatewayHostName=127.0.0.1", KindDevice, "h/devices/d1", "127.0.0.1"},
		{"x509", "HostName=h;DeviceId=d1;x509=true", KindDevice, "h/devices/d1", "h"},
		{"ready-made signature", "HostName=h;DeviceId=d1;SharedAccessSignature=SharedAccessSignature sr=h%2Fdevices%2Fd1&sig=x&se=1", KindDevice, "h/devices/d1", "h"},
		{"service", "HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=" + testKey, KindService, "h", "h"},
		{"event hubs", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=" + testKey + ";EntityPath=hub1", KindEventHubs, "https://ns.servicebus.windows.net/hub1", ""},
		{"unknown key ignored", "HostName=h;DeviceId=d1;SharedAccessKey=" + testKey + ";Extra=1", KindDevice, "h/devices/d1", "h"},
		{"spaces around pairs", " HostName = h ; DeviceId=d1;SharedAccessKey=" + testKey, KindDevice, "h/devices/d1", "h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind() != tt.kind {
				t.Errorf("kind = %v, want %v", c.Kind(), tt.kind)
			}
			if c.Resource() != tt.res {
				t.Errorf("resource = %q, want %q", c.Resource(), tt.res)
			}
			if tt.sock != "" && c.SocketHost() != tt.sock {
				t.Errorf("socket host = %q, want %q", c.SocketHost(), tt.sock)
			}
			again, err := Parse(c.Encode())
			if err != nil || again != c {
				t.Errorf("Encode does not round-trip: %v %+v", err, again)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, field, contains string
	}{
		{"empty", "", "", "is empty"},
		{"no equals", "HostName=h;DeviceId", "", "part 2 is not Key=Value"},
		{"no host", "DeviceId=d1;SharedAccessKey=" + testKey, "HostName", "missing"},
		{"scheme in host", "HostName=https://h.azure-devices.net;DeviceId=d;SharedAccessKey=" + testKey, "HostName", `drop "https://"`},
		{"path in host", "HostName=h/x;DeviceId=d;SharedAccessKey=" + testKey, "HostName", "bare host name"},
		{"no credential", "HostName=h;DeviceId=d1", "SharedAccessKey", "one of SharedAccessKey, SharedAccessSignature or x509"},
		{"two credentials", "HostName=h;DeviceId=d1;x509=true;SharedAccessKey=" + testKey, "SharedAccessKey", "only one"},
		{"bad base64", "HostName=h;DeviceId=d1;SharedAccessKey=not*base64", "SharedAccessKey", "not valid base64"},
		{"x509 false", "HostName=h;DeviceId=d1;x509=false", "x509", "must be true"},
		{"duplicate", "HostName=h;HostName=g;DeviceId=d;SharedAccessKey=" + testKey, "HostName", "more than once"},
		{"empty value", "HostName=h;DeviceId=;SharedAccessKey=" + testKey, "DeviceId", "is empty"},
		{"module without device", "HostName=h;ModuleId=m;SharedAccessKey=" + testKey, "DeviceId", "ModuleId needs"},
		{"typo is named", "HostName=h;DeviceId=d1;SharedAccesKey=" + testKey, "SharedAccessKey", "unknown keys present: SharedAccesKey"},
		{"service without key", "HostName=h;SharedAccessKeyName=service", "SharedAccessKey", "policy's key"},
		{"bad signature text", "HostName=h;DeviceId=d;SharedAccessSignature=abc", "SharedAccessSignature", "not a SAS token"},
		{"event hubs bad endpoint", "Endpoint=https://ns;SharedAccessKeyName=s;SharedAccessKey=" + testKey, "Endpoint", "sb://"},
		{"event hubs no policy", "Endpoint=sb://ns/;SharedAccessKey=" + testKey, "SharedAccessKeyName", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want *FieldError, got %v", err)
			}
			if fe.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not mention %q", err, tt.contains)
			}
			if !errors.Is(err, ErrNotConnectionString) {
				t.Errorf("error does not wrap ErrNotConnectionString")
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "base64\"") {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

func TestStringRedactsKey(t *testing.T) {
	c, err := Parse("HostName=h;DeviceId=d1;SharedAccessKey=" + testKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(c)} {
		if strings.Contains(s, testKey) || !strings.Contains(s, "<redacted>") {
			t.Errorf("formatted connection string shows the key or hides the redaction: %s", s)
		}
	}
	if !strings.Contains(c.Encode(), testKey) {
		t.Errorf("Encode lost the key")
	}
}

func TestDecodeKeyForgivesPaddingAndAlphabet(t *testing.T) {
	want, err := DecodeKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	urlSafe := strings.NewReplacer("+", "-", "/", "_").Replace(testKey)
	for _, k := range []string{strings.TrimRight(testKey, "="), urlSafe, " " + testKey + "\n"} {
		got, err := DecodeKey(k)
		if err != nil || string(got) != string(want) {
			t.Errorf("DecodeKey(%q) = %x, %v", k, got, err)
		}
	}
	if _, err := DecodeKey("%%%"); err == nil {
		t.Error("DecodeKey accepted garbage")
	}
}
