package iothub

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeBag(t *testing.T) {
	tests := []struct {
		name string
		bag  string
		want Message
	}{
		{"node literal dollar", "$.mid=42&$.ct=application%2Fjson&$.ce=utf-8&alert=true",
			Message{MessageID: "42", ContentType: "application/json", ContentEncoding: "utf-8", Properties: []Property{{"alert", "true"}}}},
		{"c sdk encoded dollar", "%24.mid=42&%24.cid=c%2F1&k=v%20w",
			Message{MessageID: "42", CorrelationID: "c/1", Properties: []Property{{"k", "v w"}}}},
		{"leading question mark", "?a=1", Message{Properties: []Property{{"a", "1"}}}},
		{"null and empty values", "prop1&prop2=&prop3=a%20string",
			Message{Properties: []Property{{"prop1", ""}, {"prop2", ""}, {"prop3", "a string"}}}},
		{"plus stays plus", "k=a+b", Message{Properties: []Property{{"k", "a+b"}}}},
		{"times", "$.exp=2030-01-02T03%3A04%3A05Z&$.ctime=2021-04-21T11:30:16.5Z",
			Message{ExpiryTime: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), CreationTime: time.Date(2021, 4, 21, 11, 30, 16, 5e8, time.UTC)}},
		{"unknown system key ignored", "$.xyz=1&a=2", Message{Properties: []Property{{"a", "2"}}}},
		{"order kept", "z=1&a=2&m=3", Message{Properties: []Property{{"z", "1"}, {"a", "2"}, {"m", "3"}}}},
		{"empty", "", Message{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			if err := DecodeBag(tt.bag, &m); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", m, tt.want)
			}
		})
	}
}

func TestDecodeBagErrors(t *testing.T) {
	for _, bag := range []string{"a=%zz", "%2=1", "=v", "$.exp=tomorrow", strings.Repeat("a=1&", maxBagEntries+1)} {
		var m Message
		if err := DecodeBag(bag, &m); !errors.Is(err, ErrBadBag) {
			t.Errorf("DecodeBag(%.20q) = %v, want ErrBadBag", bag, err)
		}
	}
}

func TestEncodeBagKeepsSlashesOutOfTopics(t *testing.T) {
	m := Message{MessageID: "m/1", To: "/devices/d1/messages/deviceBound", CorrelationID: "c&1=2",
		ExpiryTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Properties: []Property{{"a/b", "c/d e"}, {"empty", ""}}}
	for _, literal := range []bool{false, true} {
		bag := EncodeBag(&m, literal)
		if strings.Contains(bag, "/") {
			t.Fatalf("bag %q carries a '/'", bag)
		}
		if literal != strings.HasPrefix(bag, "$.mid=") || !literal && !strings.HasPrefix(bag, "%24.mid=") {
			t.Fatalf("literalDollar=%v: bag starts %q", literal, bag[:8])
		}
		topic := C2DTopic("d1", &m)
		// The Node and Python SDKs take the fifth '/'-separated part as the bag.
		if parts := strings.Split(topic, "/"); len(parts) != 5 {
			t.Fatalf("C2D topic splits into %d parts: %q", len(parts), topic)
		}
		var back Message
		if err := DecodeBag(bag, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, m)
		}
	}
}

func TestSize(t *testing.T) {
	m := Message{Body: make([]byte, 100), MessageID: "abc", Properties: []Property{{"k", "vv"}}}
	if got := m.Size(); got != 100+3+1+2 {
		t.Fatalf("Size = %d", got)
	}
}

func TestParseUsername(t *testing.T) {
	tests := []struct {
		name, username, clientID string
		want                     Username
	}{
		{"node", "h.azure-devices.net/dev1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20)", "dev1",
			Username{Host: "h.azure-devices.net", ClientID: "dev1", APIVersion: "2021-04-12", ClientType: "azure-iot-device/1.18.4 (node v20)"}},
		{"c sdk lower-case escapes, module", "h.azure-devices.net/dev1/mod1/?api-version=2020-09-30&DeviceClientType=iothubclient%2f1.11.0", "dev1/mod1",
			Username{Host: "h.azure-devices.net", ClientID: "dev1/mod1", APIVersion: "2020-09-30", ClientType: "iothubclient/1.11.0"}},
		{"python with model id", "h/dev1/?api-version=2020-09-30&DeviceClientType=py&model-id=dtmi%3Acom%3Aexample%3BX%3B1", "dev1",
			Username{Host: "h", ClientID: "dev1", APIVersion: "2020-09-30", ClientType: "py", ModelID: "dtmi:com:example;X;1"}},
		{"old c sdk without question mark", "h/dev1/api-version=2016-11-14&DeviceClientType=c", "dev1",
			Username{Host: "h", ClientID: "dev1", APIVersion: "2016-11-14", ClientType: "c"}},
		{"docs", "MyHub.azure-devices.net/dev1/?api-version=2021-04-12", "dev1",
			Username{Host: "MyHub.azure-devices.net", ClientID: "dev1", APIVersion: "2021-04-12"}},
		{"bare", "h/dev1", "dev1", Username{Host: "h", ClientID: "dev1"}},
		{"trailing slash", "h/dev1/", "dev1", Username{Host: "h", ClientID: "dev1"}},
		{"id inside host", "dev1.h/dev1/?api-version=1", "dev1", Username{Host: "dev1.h", ClientID: "dev1", APIVersion: "1"}},
		{"id is a prefix of an earlier segment", "h/d/x/d/?api-version=1", "d", Username{Host: "h", ClientID: "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUsername(tt.username, tt.clientID)
			if err != nil {
				t.Fatal(err)
			}
			got.Query = nil
			if tt.name == "id is a prefix of an earlier segment" {
				// The first match wins: "x/d/?api-version=1" is then the query,
				// which is not a valid one for the hub but still parses.
				if got.Host != "h" {
					t.Fatalf("host %q", got.Host)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	for _, bad := range []struct{ u, c string }{{"dev1", "dev1"}, {"h/dev2/?api-version=1", "dev1"}, {"h/dev12", "dev1"}, {"h/dev1", ""}} {
		if _, err := ParseUsername(bad.u, bad.c); err == nil {
			t.Errorf("ParseUsername(%q, %q) accepted", bad.u, bad.c)
		}
	}
	id := Identity{DeviceID: "dev1", ModuleID: "m"}
	u, err := ParseUsername(FormatUsername("h", id, APIVersion, "catmsim/1 (x)", "dtmi:a;1"), id.ClientID())
	if err != nil || u.ClientType != "catmsim/1 (x)" || u.ModelID != "dtmi:a;1" || u.APIVersion != APIVersion {
		t.Fatalf("FormatUsername round trip: %+v, %v", u, err)
	}
}

func TestParseDevicePublish(t *testing.T) {
	tests := []struct {
		topic string
		want  DevicePublish
	}{
		{"devices/d1/messages/events/", DevicePublish{Kind: TopicTelemetry, Identity: Identity{DeviceID: "d1"}}},
		{"devices/d1/messages/events/a=1", DevicePublish{Kind: TopicTelemetry, Identity: Identity{DeviceID: "d1"}, Bag: "a=1"}},
		{"devices/d1/messages/events", DevicePublish{Kind: TopicTelemetry, Identity: Identity{DeviceID: "d1"}}},
		{"devices/d1/modules/m1/messages/events/%24.on=out", DevicePublish{Kind: TopicTelemetry, Identity: Identity{DeviceID: "d1", ModuleID: "m1"}, Bag: "%24.on=out"}},
		{"$iothub/twin/GET/?$rid=7", DevicePublish{Kind: TopicTwinGet, RID: "7"}},
		{"$iothub/twin/PATCH/properties/reported/?$rid=a+b&$version=3", DevicePublish{Kind: TopicTwinPatchReported, RID: "a+b", Version: "3"}},
		{"$iothub/methods/res/200/?$rid=1f", DevicePublish{Kind: TopicMethodResponse, Status: 200, RID: "1f"}},
		{"$iothub/methods/res/-1/?$rid=x", DevicePublish{Kind: TopicMethodResponse, Status: -1, RID: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			got, err := ParseDevicePublish(tt.topic)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"devices/d1/messages/devicebound/x", "devices//messages/events/", "foo", "$iothub/methods/res/ok/?$rid=1", "devices/d1/modules//messages/events/", "$iothub/twin/PATCH/properties/desired/"} {
		if _, err := ParseDevicePublish(bad); err == nil {
			t.Errorf("ParseDevicePublish(%q) accepted", bad)
		}
	}
}

func TestHubTopicsRoundTrip(t *testing.T) {
	tests := []struct {
		topic string
		want  HubPublish
	}{
		{MethodRequestTopic("reboot", "5"), HubPublish{Kind: HubTopicMethodRequest, Method: "reboot", RID: "5"}},
		{TwinResponseTopic(204, "r/1", 9), HubPublish{Kind: HubTopicTwinResponse, Status: 204, RID: "r/1", Version: 9}},
		{TwinResponseTopic(200, "x", 0), HubPublish{Kind: HubTopicTwinResponse, Status: 200, RID: "x"}},
		{DesiredPatchTopic(12), HubPublish{Kind: HubTopicDesiredPatch, Version: 12}},
		{C2DTopic("d1", &Message{MessageID: "m"}), HubPublish{Kind: HubTopicC2D, Bag: "%24.mid=m"}},
	}
	for _, tt := range tests {
		got, err := ParseHubPublish(tt.topic)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseHubPublish(%q) = %+v, %v; want %+v", tt.topic, got, err, tt.want)
		}
	}
	dp, err := ParseDevicePublish(MethodResponseTopic(500, "r 1"))
	if err != nil || dp.Status != 500 || dp.RID != "r 1" {
		t.Errorf("method response round trip: %+v %v", dp, err)
	}
	dp, err = ParseDevicePublish(ReportedPatchTopic("q&1"))
	if err != nil || dp.Kind != TopicTwinPatchReported || dp.RID != "q&1" {
		t.Errorf("reported patch round trip: %+v %v", dp, err)
	}
}

func TestFilterAllowed(t *testing.T) {
	d := Identity{DeviceID: "d1"}
	m := Identity{DeviceID: "d1", ModuleID: "m1"}
	tests := []struct {
		id     Identity
		filter string
		want   bool
	}{
		{d, "devices/d1/messages/devicebound/#", true},
		{d, "devices/d2/messages/devicebound/#", false},
		{d, "devices/+/messages/devicebound/#", false},
		{d, "#", false},
		{d, MethodsFilter, true},
		{d, TwinResponseFilter, true},
		{d, DesiredFilter, true},
		{m, "devices/d1/modules/m1/inputs/#", true},
		{m, "devices/d1/modules/m1/#", true},
		{m, "devices/d1/messages/devicebound/#", false},
		{d, "devices/d1/modules/m1/inputs/#", false},
	}
	for _, tt := range tests {
		if got := FilterAllowed(tt.id, tt.filter); got != tt.want {
			t.Errorf("FilterAllowed(%v, %q) = %v", tt.id, tt.filter, got)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"dev1", "Pump-07.b+c:1@x$y'z(1)*!,=", strings.Repeat("a", 128)} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a/b", strings.Repeat("a", 129), "é"} {
		if err := ValidateID(bad); err == nil {
			t.Errorf("ValidateID(%q) accepted", bad)
		}
	}
	if _, err := ParseClientID("d1/"); err == nil {
		t.Error("ParseClientID accepted an empty module id")
	}
	if id, err := ParseClientID("d1/m1"); err != nil || id != (Identity{"d1", "m1"}) {
		t.Errorf("ParseClientID(d1/m1) = %v, %v", id, err)
	}
}

func TestMQTTIdleTimeout(t *testing.T) {
	tests := []struct{ ka, want time.Duration }{
		{0, MaxMQTTIdle},
		{60 * time.Second, 90 * time.Second},
		{1177 * time.Second, 1765500 * time.Millisecond},
		{1200 * time.Second, MaxMQTTIdle},
	}
	for _, tt := range tests {
		if got := MQTTIdleTimeout(tt.ka); got != tt.want {
			t.Errorf("MQTTIdleTimeout(%v) = %v, want %v", tt.ka, got, tt.want)
		}
	}
}
