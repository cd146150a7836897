package scenarios

import (
	"errors"
	"strings"
	"testing"
)

func TestTargetConnectionString(t *testing.T) {
	const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	iothub := Target{Kind: TargetIoTHub, ConnectionStringEnv: "CS"}
	tests := []struct {
		name   string
		target Target
		value  string
		err    string
	}{
		{"service", iothub, "HostName=h.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + key, ""},
		{"unset", iothub, "", "set CS to a service connection string"},
		{"device string", iothub, "HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=" + key, "CS holds a device connection string; the run needs a service one"},
		{"garbled", iothub, "HostName=h.azure-devices.net;SharedAccessKeyName=p", "CS: connection string"},
		{"embedded target", Target{Kind: TargetEmbedded}, "", "target kind embedded has no connection string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := tt.target.ConnectionString(func(k string) string {
				if k == "CS" {
					return tt.value
				}
				return ""
			})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), key) {
					t.Fatalf("the error shows the key: %v", err)
				}
				return
			}
			if err != nil || cs.HostName != "h.azure-devices.net" || cs.SharedAccessKeyName != "iothubowner" {
				t.Fatalf("%+v, %v", cs, err)
			}
		})
	}
	_, err := iothub.ConnectionString(nil)
	if !errors.Is(err, ErrNoConnectionString) {
		t.Errorf("unset variable: %v", err)
	}
}
