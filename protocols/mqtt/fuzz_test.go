package mqtt

import (
	"bytes"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/internal/iothub"
)

// FuzzDecodeHubPublish feeds the client's reading of hub publishes with any
// topic and payload: it must not panic, a C2D message keeps its body, and a
// twin response or method request carries what its topic says.
func FuzzDecodeHubPublish(f *testing.F) {
	for _, s := range []string{
		"devices/d/messages/devicebound/%24.mid=1&%24.to=%2Fdevices%2Fd%2Fmessages%2FdeviceBound&k=v",
		"devices/d/messages/devicebound/%zz",
		"$iothub/twin/res/200/?$rid=1",
		"$iothub/twin/res/204/?$rid=2&$version=7",
		"$iothub/twin/res/x/?$rid=2",
		"$iothub/methods/POST/reboot/?$rid=9",
		"$iothub/twin/PATCH/properties/desired/?$version=3",
		"unknown/topic",
	} {
		f.Add(s, []byte(`{"a":1}`))
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		hm, err := decodeHubPublish(topic, payload)
		if err != nil {
			return
		}
		switch hm.Kind {
		case iothub.HubTopicC2D:
			if hm.c2d == nil || !bytes.Equal(hm.c2d.Body, payload) {
				t.Fatalf("C2D from %q lost its body", topic)
			}
		case iothub.HubTopicMethodRequest:
			if hm.Method == "" || !strings.HasPrefix(topic, "$iothub/methods/POST/"+hm.Method+"/") {
				t.Fatalf("method %q from %q", hm.Method, topic)
			}
		case iothub.HubTopicTwinResponse, iothub.HubTopicDesiredPatch:
			if hm.c2d != nil {
				t.Fatalf("twin topic %q decoded as C2D", topic)
			}
		default:
			t.Fatalf("topic %q decoded to kind %d without an error", topic, hm.Kind)
		}
	})
}
