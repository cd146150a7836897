package iothub

import (
	"net/url"
	"strings"
	"testing"
)

func TestRESTPaths(t *testing.T) {
	tests := []struct {
		name, got, want string
		segs            []string // what a server splitting on '/' and unescaping sees
	}{
		{"events", EventsPath(Identity{DeviceID: "dev1"}), "/devices/dev1/messages/events", []string{"devices", "dev1", "messages", "events"}},
		{"module events", EventsPath(Identity{DeviceID: "d", ModuleID: "m#1"}), "/devices/d/modules/m%231/messages/events", []string{"devices", "d", "modules", "m#1", "messages", "events"}},
		{"devicebound", DeviceBoundPath("a?b"), "/devices/a%3Fb/messages/devicebound", []string{"devices", "a?b", "messages", "devicebound"}},
		{"complete", DeviceBoundLockPath("d", "L-1"), "/devices/d/messages/devicebound/L-1", []string{"devices", "d", "messages", "devicebound", "L-1"}},
		{"abandon", AbandonPath("d", "L"), "/devices/d/messages/devicebound/L/abandon", []string{"devices", "d", "messages", "devicebound", "L", "abandon"}},
		{"event hubs", EventHubsPublisherPath("telemetry", "dev%1"), "/telemetry/publishers/dev%251/messages", []string{"telemetry", "publishers", "dev%1", "messages"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
			var segs []string
			for _, s := range strings.Split(strings.TrimPrefix(tt.got, "/"), "/") {
				u, err := url.PathUnescape(s)
				if err != nil {
					t.Fatal(err)
				}
				segs = append(segs, u)
			}
			if strings.Join(segs, "|") != strings.Join(tt.segs, "|") {
				t.Fatalf("segments %q, want %q", segs, tt.segs)
			}
		})
	}
}
