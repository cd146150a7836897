package iothub

import (
	"reflect"
	"strings"
	"testing"
)

func FuzzDecodeBag(f *testing.F) {
	for _, s := range []string{"$.mid=1&a=b", "%24.ct=application%2Fjson&x", "?k=%zz", "a=1&&b=", "$.exp=2030-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, bag string) {
		var m Message
		if err := DecodeBag(bag, &m); err != nil {
			return
		}
		// What decodes must survive an encode-decode round trip unchanged, with
		// no '/' in the encoded form.
		for _, literal := range []bool{false, true} {
			enc := EncodeBag(&m, literal)
			if strings.Contains(enc, "/") {
				t.Fatalf("encoded bag has '/': %q", enc)
			}
			var back Message
			if err := DecodeBag(enc, &back); err != nil {
				t.Fatalf("re-decoding %q: %v", enc, err)
			}
			if !reflect.DeepEqual(normalize(back), normalize(m)) {
				t.Fatalf("round trip changed the message:\n%+v\n%+v", m, back)
			}
		}
	})
}

// normalize drops what an encode cannot carry back: system times lose
// sub-millisecond precision, and properties named "$.x" are not kept.
func normalize(m Message) Message {
	m.ExpiryTime = m.ExpiryTime.Truncate(1e6)
	m.CreationTime = m.CreationTime.Truncate(1e6)
	if len(m.Properties) == 0 {
		m.Properties = nil
	}
	return m
}

func FuzzParseUsername(f *testing.F) {
	f.Add("h/dev1/?api-version=2021-04-12&DeviceClientType=x", "dev1")
	f.Add("h/d/m/api-version=1", "d/m")
	f.Add("/d", "d")
	f.Fuzz(func(t *testing.T, username, clientID string) {
		u, err := ParseUsername(username, clientID)
		if err != nil {
			return
		}
		if u.ClientID != clientID || u.Host == "" || !strings.HasPrefix(username, u.Host+"/"+clientID) {
			t.Fatalf("ParseUsername(%q, %q) = %+v", username, clientID, u)
		}
	})
}

func FuzzParseTopics(f *testing.F) {
	for _, s := range []string{"devices/d/messages/events/a=b", "$iothub/twin/GET/?$rid=1", "$iothub/methods/res/200/?$rid=x",
		"$iothub/methods/POST/m/?$rid=1", "$iothub/twin/res/204/?$rid=1&$version=2", "devices/d/messages/devicebound/%24.mid=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if p, err := ParseDevicePublish(topic); err == nil && p.Kind == TopicTelemetry {
			if p.Identity.DeviceID == "" || !strings.HasPrefix(topic, "devices/"+p.Identity.DeviceID+"/") {
				t.Fatalf("telemetry topic %q parsed as %+v", topic, p)
			}
		}
		_, _ = ParseHubPublish(topic)
	})
}
