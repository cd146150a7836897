package iothub

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAMQPAddress(t *testing.T) {
	dev := Identity{DeviceID: "dev1"}
	mod := Identity{DeviceID: "dev1", ModuleID: "m1"}
	tests := []struct {
		name, addr string
		want       AMQPAddress
	}{
		{"cbs", "$cbs", AMQPAddress{Node: AMQPNodeCBS}},
		{"node telemetry path", "/devices/dev1/messages/events", AMQPAddress{Node: AMQPNodeEvents, Identity: dev}},
		{"path without leading slash", "devices/dev1/messages/events", AMQPAddress{Node: AMQPNodeEvents, Identity: dev}},
		{"net absolute telemetry", "amqps://hub.azure-devices.net/devices/dev1/messages/events", AMQPAddress{Node: AMQPNodeEvents, Identity: dev, Host: "hub.azure-devices.net"}},
		{"encoded id", "amqps://hub.azure-devices.net/devices/my%23dev%3A1/messages/events", AMQPAddress{Node: AMQPNodeEvents, Identity: Identity{DeviceID: "my#dev:1"}, Host: "hub.azure-devices.net"}},
		{"id with a literal percent", "/devices/50%off/messages/events", AMQPAddress{Node: AMQPNodeEvents, Identity: Identity{DeviceID: "50%off"}}},
		{"an escape that decodes to no valid id is the id", "/devices/a%2Fb/messages/events", AMQPAddress{Node: AMQPNodeEvents, Identity: Identity{DeviceID: "a%2Fb"}}},
		{"deviceBound", "/devices/dev1/messages/deviceBound", AMQPAddress{Node: AMQPNodeDeviceBound, Identity: dev}},
		{"devicebound lower case", "/devices/dev1/messages/devicebound", AMQPAddress{Node: AMQPNodeDeviceBound, Identity: dev}},
		{"fixed segments in any case", "/DEVICES/dev1/Messages/DeviceBound/", AMQPAddress{Node: AMQPNodeDeviceBound, Identity: dev}},
		{"methods", "/devices/dev1/methods/devicebound", AMQPAddress{Node: AMQPNodeMethods, Identity: dev}},
		{"net methods", "amqps://h/devices/dev1/methods/deviceBound", AMQPAddress{Node: AMQPNodeMethods, Identity: dev, Host: "h"}},
		{"twin", "/devices/dev1/twin", AMQPAddress{Node: AMQPNodeTwin, Identity: dev}},
		{"module telemetry", "/devices/dev1/modules/m1/messages/events", AMQPAddress{Node: AMQPNodeEvents, Identity: mod}},
		{"module methods", "/devices/dev1/modules/m1/methods/devicebound", AMQPAddress{Node: AMQPNodeMethods, Identity: mod}},
		{"module twin", "amqps://h/devices/dev1/modules/m1/twin", AMQPAddress{Node: AMQPNodeTwin, Identity: mod, Host: "h"}},
		{"query ignored", "/devices/dev1/twin?api-version=2020-09-30", AMQPAddress{Node: AMQPNodeTwin, Identity: dev}},
		{"a device named modules", "/devices/modules/messages/events", AMQPAddress{Node: AMQPNodeEvents, Identity: Identity{DeviceID: "modules"}}},
		{"service C2D", "/messages/devicebound", AMQPAddress{Node: AMQPNodeServiceDeviceBound}},
		{"service feedback", "/messages/serviceBound/feedback", AMQPAddress{Node: AMQPNodeServiceFeedback}},
		{"service file notifications", "amqps://h/messages/serviceBound/filenotifications", AMQPAddress{Node: AMQPNodeServiceFileNotifications, Host: "h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAMQPAddress(tt.addr)
			if err != nil || got != tt.want {
				t.Fatalf("ParseAMQPAddress(%q) = %+v, %v; want %+v", tt.addr, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "/", "/devices", "/devices/dev1", "/devices/dev1/messages", "/devices//messages/events",
		"/devices/dev1/messages/other", "/devices/dev1/modules/m1/messages/deviceBound",
		"amqps:///devices/dev1/twin", "/messages", "/devices/dev 1/twin", "/devices/dev1/twin/extra"} {
		if a, err := ParseAMQPAddress(bad); err == nil {
			t.Errorf("ParseAMQPAddress(%q) = %+v, want an error", bad, a)
		}
	}
}

func TestAMQPPathRoundTrip(t *testing.T) {
	for _, id := range []Identity{{DeviceID: "dev1"}, {DeviceID: "a#b", ModuleID: "m:1"}} {
		for _, n := range []AMQPNode{AMQPNodeEvents, AMQPNodeMethods, AMQPNodeTwin, AMQPNodeDeviceBound} {
			if n == AMQPNodeDeviceBound && id.ModuleID != "" {
				continue
			}
			p := AMQPPath(n, id)
			got, err := ParseAMQPAddress(p)
			if err != nil || got.Node != n || got.Identity != id {
				t.Errorf("%s of %v: path %q parses to %+v, %v", n, id, p, got, err)
			}
		}
	}
	for _, n := range []AMQPNode{AMQPNodeCBS, AMQPNodeServiceDeviceBound, AMQPNodeServiceFeedback, AMQPNodeServiceFileNotifications} {
		if got, err := ParseAMQPAddress(AMQPPath(n, Identity{})); err != nil || got.Node != n {
			t.Errorf("%s: %+v, %v", n, got, err)
		}
	}
	if to := AMQPC2DTo("a/b"); to != "/devices/a%2Fb/messages/deviceBound" {
		t.Errorf("C2D to %q", to)
	}
}

func TestParseSASLPlainUsername(t *testing.T) {
	tests := []struct {
		in   string
		want SASLPlainUser
	}{
		{"dev1@sas.myhub", SASLPlainUser{Identity: Identity{DeviceID: "dev1"}, HubName: "myhub"}},
		{"service@sas.root.myhub", SASLPlainUser{Policy: "service", HubName: "myhub"}},
		{"dev1/m1@sas.myhub", SASLPlainUser{Identity: Identity{DeviceID: "dev1", ModuleID: "m1"}, HubName: "myhub"}},
		{"user@example@sas.myhub", SASLPlainUser{Identity: Identity{DeviceID: "user@example"}, HubName: "myhub"}},
		{"dev1@sas.root", SASLPlainUser{Identity: Identity{DeviceID: "dev1"}, HubName: "root"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSASLPlainUsername(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			var back string
			if got.Policy != "" {
				back = FormatSASLPlainPolicyUsername(got.Policy, got.HubName)
			} else {
				back = FormatSASLPlainUsername(got.Identity, got.HubName)
			}
			if back != tt.in {
				t.Fatalf("formatted back as %q", back)
			}
		})
	}
	for _, bad := range []string{"", "dev1", "dev1@sas.", "@sas.hub", "dev 1@sas.hub", "dev1@hub"} {
		if u, err := ParseSASLPlainUsername(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, u)
		}
	}
	if HubName("myhub.azure-devices.net") != "myhub" || HubName("localhost") != "localhost" {
		t.Error("HubName")
	}
}

type testUUID [16]byte

func (u testUUID) String() string { return "0102ABCD-0000-0000-0000-000000000000" }

type testSymbol string

func TestAMQPValues(t *testing.T) {
	ids := []struct {
		in   any
		want string
	}{
		{"m-1", "m-1"},
		{uint64(42), "42"},
		{testUUID{}, "0102abcd-0000-0000-0000-000000000000"},
		{[]byte("bin"), "bin"},
		{[]byte{0xff, 0x00}, "ff00"},
	}
	for _, tt := range ids {
		if got, err := AMQPIDString(tt.in); err != nil || got != tt.want {
			t.Errorf("AMQPIDString(%#v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []any{int32(1), 1.5, nil, [8]byte{}} {
		if _, err := AMQPIDString(bad); !errors.Is(err, ErrAMQPValue) {
			t.Errorf("AMQPIDString(%#v) = %v", bad, err)
		}
	}
	texts := []struct {
		in   any
		want string
		ok   bool
	}{
		{"s", "s", true}, {testSymbol("sym"), "sym", true}, {true, "true", true}, {int32(-3), "-3", true},
		{uint8(7), "7", true}, {int64(1) << 40, "1099511627776", true}, {float64(1.5), "1.5", true}, {float32(0.25), "0.25", true},
		{time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC), "2024-01-02T03:04:05.006Z", true}, {testUUID{}, "0102abcd-0000-0000-0000-000000000000", true},
		{[]any{1}, "", false}, {map[string]any{}, "", false}, {nil, "", false},
	}
	for _, tt := range texts {
		got, ok := AMQPValueText(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("AMQPValueText(%#v) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	statuses := []struct {
		in   any
		want int
		ok   bool
	}{
		{int32(200), 200, true}, {int64(404), 404, true}, {uint8(5), 5, true}, {"201", 201, true},
		{int64(1) << 40, 0, false}, {"x", 0, false}, {nil, 0, false}, {1.0, 0, false},
	}
	for _, tt := range statuses {
		got, ok := AMQPStatus(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("AMQPStatus(%#v) = %d, %v", tt.in, got, ok)
		}
	}
}

func TestFromAMQP(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &AMQPMessage{
		MessageID: testUUID{}, CorrelationID: uint64(7), UserID: []byte("u"), To: "/devices/d/messages/events",
		ContentType: "application/json", ContentEncoding: "utf-8", AbsoluteExpiryTime: exp,
		ApplicationProperties: []AMQPProperty{
			{"b", "2"}, {"a", int32(1)}, {AMQPPropCreationTime, "2021-04-21T11:30:16Z"},
			{AMQPPropMessageSchema, "s1"}, {AMQPPropOutputName, "out"},
		},
		MessageAnnotations: []AMQPProperty{{AnnotationInterfaceID, "dtmi:a;1"}, {AnnotationComponentName, "thermo"}, {"x-opt-k", int64(3)}},
		Body:               []byte("body"),
	}
	m, err := FromAMQP(a)
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		Body: []byte("body"), MessageID: "0102abcd-0000-0000-0000-000000000000", CorrelationID: "7", UserID: "u", To: "/devices/d/messages/events",
		ContentType: "application/json", ContentEncoding: "utf-8", ExpiryTime: exp, CreationTime: time.Date(2021, 4, 21, 11, 30, 16, 0, time.UTC),
		OutputName: "out", InterfaceID: "dtmi:a;1", ComponentName: "thermo", MessageSchema: "s1",
		Properties:  []Property{{"b", "2"}, {"a", "1"}},
		Annotations: []Property{{"x-opt-k", "3"}},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got  %+v\nwant %+v", m, want)
	}
	// And back: the system properties go where .NET reads them.
	back := ToAMQP(m)
	if back.MessageID != m.MessageID || back.CorrelationID != "7" || string(back.UserID) != "u" || back.AbsoluteExpiryTime != exp {
		t.Fatalf("ToAMQP %+v", back)
	}
	wantApp := []AMQPProperty{{AMQPPropCreationTime, "2021-04-21T11:30:16Z"}, {AMQPPropMessageSchema, "s1"}, {AMQPPropOutputName, "out"}, {"b", "2"}, {"a", "1"}}
	if !reflect.DeepEqual(back.ApplicationProperties, wantApp) {
		t.Fatalf("application properties %v", back.ApplicationProperties)
	}
	wantAnn := []AMQPProperty{{AnnotationInterfaceID, "dtmi:a;1"}, {AnnotationComponentName, "thermo"}, {"x-opt-k", "3"}}
	if !reflect.DeepEqual(back.MessageAnnotations, wantAnn) {
		t.Fatalf("annotations %v", back.MessageAnnotations)
	}
	again, err := FromAMQP(back)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
	if empty := ToAMQP(&Message{}); empty.MessageID != nil || empty.CorrelationID != nil || empty.UserID != nil {
		t.Fatalf("an empty message has ids %+v", empty)
	}

	for name, bad := range map[string]*AMQPMessage{
		"map property":      {ApplicationProperties: []AMQPProperty{{"m", map[string]any{}}}},
		"int message id":    {MessageID: int32(1)},
		"bad creation time": {ApplicationProperties: []AMQPProperty{{AMQPPropCreationTime, "yesterday"}}},
	} {
		if _, err := FromAMQP(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if m, err := FromAMQP(&AMQPMessage{ApplicationProperties: []AMQPProperty{{AMQPPropCreationTime, time.Unix(5, 0)}}}); err != nil || !m.CreationTime.Equal(time.Unix(5, 0)) {
		t.Errorf("a timestamp creation time: %v, %v", m, err)
	}
}

func TestIsCBSSASType(t *testing.T) {
	for typ, want := range map[string]bool{CBSTokenTypeSAS: true, "azure-devices.net:sastoken": true, "jwt": false, "": false} {
		if IsCBSSASType(typ) != want {
			t.Errorf("%q", typ)
		}
	}
	if !strings.HasSuffix(CBSTokenTypeSAS, ":sastoken") {
		t.Error(CBSTokenTypeSAS)
	}
}
