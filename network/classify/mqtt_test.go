package classify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/catmsim/catmsim/network"
)

// MQTT 3.1.1 packet builders, byte-exact per the specification.

func mqttPacket(first byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	out := []byte{first}
	n := len(b)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, b...)
}

func mqttStr(s string) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(len(s)))
}

func mqttS(s string) []byte { return append(mqttStr(s), s...) }

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func mqttConnectPkt(clientID, user, pass string) []byte {
	return mqttPacket(0x10, mqttS("MQTT"), []byte{4, 0xC2}, u16(240), mqttS(clientID), mqttS(user), mqttS(pass))
}

func mqttConnackPkt() []byte { return mqttPacket(0x20, []byte{0, 0}) }

func mqttSubscribePkt(id uint16, filters ...string) []byte {
	body := [][]byte{u16(id)}
	for _, f := range filters {
		body = append(body, mqttS(f), []byte{1})
	}
	return mqttPacket(0x82, body...)
}

func mqttSubackPkt(id uint16, n int) []byte {
	return mqttPacket(0x90, u16(id), bytes.Repeat([]byte{1}, n))
}

func mqttPublishPkt(topic string, qos byte, id uint16, payload []byte) []byte {
	if qos == 0 {
		return mqttPacket(0x30, mqttS(topic), payload)
	}
	return mqttPacket(0x30|qos<<1, mqttS(topic), u16(id), payload)
}

func mqttAckPkt(typ byte, id uint16) []byte {
	first := typ << 4
	if typ == mqttPubrel {
		first |= 2
	}
	return mqttPacket(first, u16(id))
}

var (
	pingreqPkt    = []byte{0xC0, 0}
	pingrespPkt   = []byte{0xD0, 0}
	disconnectPkt = []byte{0xE0, 0}
)

func newMQTTPender(rules ...Rule) func() pender {
	return func() pender { return NewMQTT(rules...) }
}

func TestMQTT(t *testing.T) {
	const dev = "fipy-0001"
	connect := mqttConnectPkt(dev, "hub.azure-devices.net/"+dev+"/?api-version=2021-04-12",
		"SharedAccessSignature sr=hub.azure-devices.net%2Fdevices%2Ffipy-0001&sig=abc%3D&se=1700000000")
	connack := mqttConnackPkt()
	sub := mqttSubscribePkt(1, "devices/"+dev+"/messages/devicebound/#", "$iothub/twin/res/#", "$iothub/methods/POST/#")
	suback := mqttSubackPkt(1, 3)
	tele := mqttPublishPkt("devices/"+dev+"/messages/events/%24.ct=application%2Fjson", 1, 2, []byte(`{"t":21.5}`))
	teleAck := mqttAckPkt(mqttPuback, 2)
	c2d := mqttPublishPkt("devices/"+dev+"/messages/devicebound/%24.mid=9&%24.to=%2Fdevices%2Ffipy-0001%2Fmessages%2FdeviceBound", 1, 7, []byte("led=on"))
	c2dAck := mqttAckPkt(mqttPuback, 7)
	twinGet := mqttPublishPkt("$iothub/twin/GET/?$rid=1", 0, 0, nil)
	twinRes := mqttPublishPkt("$iothub/twin/res/200/?$rid=1", 0, 0, []byte(`{"desired":{"$version":1},"reported":{"$version":1}}`))
	desired := mqttPublishPkt("$iothub/twin/PATCH/properties/desired/?$version=2", 0, 0, []byte(`{"rate":5,"$version":2}`))
	method := mqttPublishPkt("$iothub/methods/POST/reboot/?$rid=abc", 0, 0, []byte(`{}`))
	methodRes := mqttPublishPkt("$iothub/methods/res/200/?$rid=abc", 0, 0, []byte(`{"ok":true}`))
	modTele := mqttPublishPkt("devices/gw/modules/filter/messages/events/", 1, 3, bytes.Repeat([]byte{'x'}, 200))
	modAck := mqttAckPkt(mqttPuback, 3)
	big := mqttPublishPkt("devices/"+dev+"/messages/events/", 1, 4, bytes.Repeat([]byte{0xAB}, 20000))
	bigAck := mqttAckPkt(mqttPuback, 4)

	// QoS 2 exchange: PUBREC and PUBCOMP answer the PUBLISH from the other side,
	// PUBREL travels with it.
	q2 := mqttPublishPkt("devices/"+dev+"/messages/events/", 2, 9, []byte("q2"))
	q2rec, q2rel, q2comp := mqttAckPkt(mqttPubrec, 9), mqttAckPkt(mqttPubrel, 9), mqttAckPkt(mqttPubcomp, 9)

	// A PUBLISH whose topic length runs past the end of the packet.
	lying := mqttPacket(0x30, u16(500), []byte("devices/x/messages/events/"))
	reserved := mqttPacket(0x00, []byte{1, 2, 3})
	emptyTopic := mqttPublishPkt("", 0, 0, []byte("p"))
	qos3 := mqttPacket(0x36, mqttS("devices/d/messages/events/"), u16(1))
	// A remaining length whose fourth byte still has the continuation bit.
	badLen := []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}
	afterBad := cat(pingreqPkt, tele)
	longest := mqttPublishPkt("devices/d/messages/events/"+string(bytes.Repeat([]byte{'k'}, 65535-26)), 1, 1, []byte("v"))

	tests := []struct {
		name  string
		rules []Rule
		segs  []seg
		want  want
	}{
		{
			name: "iothub session",
			segs: []seg{
				up(connect), down(connack), up(sub), down(suback),
				up(tele), down(teleAck), up(pingreqPkt), down(pingrespPkt),
				down(c2d), up(c2dAck), up(twinGet), down(twinRes), down(desired),
				down(method), up(methodRes), up(modTele), down(modAck), up(big), down(bigAck),
				up(disconnectPkt),
			},
			want: want{
				network.Up: {
					network.ClassConnect:   sum(connect, sub, disconnectPkt),
					network.ClassTelemetry: sum(tele, modTele, big),
					network.ClassKeepAlive: len(pingreqPkt),
					network.ClassC2D:       len(c2dAck),
					network.ClassTwin:      len(twinGet),
					network.ClassMethod:    len(methodRes),
				},
				network.Down: {
					network.ClassConnect:   sum(connack, suback),
					network.ClassTelemetry: sum(teleAck, modAck, bigAck),
					network.ClassKeepAlive: len(pingrespPkt),
					network.ClassC2D:       len(c2d),
					network.ClassTwin:      sum(twinRes, desired),
					network.ClassMethod:    len(method),
				},
			},
		},
		{
			name: "several packets per write",
			segs: []seg{up(connect, sub, tele, pingreqPkt), down(connack, suback, teleAck, pingrespPkt, c2d), up(c2dAck)},
			want: want{
				network.Up: {
					network.ClassConnect: sum(connect, sub), network.ClassTelemetry: len(tele),
					network.ClassKeepAlive: len(pingreqPkt), network.ClassC2D: len(c2dAck),
				},
				network.Down: {
					network.ClassConnect: sum(connack, suback), network.ClassTelemetry: len(teleAck),
					network.ClassKeepAlive: len(pingrespPkt), network.ClassC2D: len(c2d),
				},
			},
		},
		{
			name: "qos 2 exchange",
			segs: []seg{up(q2), down(q2rec), up(q2rel), down(q2comp)},
			want: want{
				network.Up:   {network.ClassTelemetry: sum(q2, q2rel)},
				network.Down: {network.ClassTelemetry: sum(q2rec, q2comp)},
			},
		},
		{
			name: "ack of an unknown or already acknowledged packet id",
			segs: []seg{up(tele), down(teleAck), down(teleAck), down(mqttAckPkt(mqttPuback, 99))},
			want: want{
				network.Up:   {network.ClassTelemetry: len(tele)},
				network.Down: {network.ClassTelemetry: len(teleAck), network.ClassOther: len(teleAck) * 2},
			},
		},
		{
			name: "ack direction matters",
			// A PUBACK travelling the same way as the PUBLISH does not match it.
			segs: []seg{up(tele), up(teleAck), down(teleAck)},
			want: want{
				network.Up:   {network.ClassTelemetry: len(tele), network.ClassOther: len(teleAck)},
				network.Down: {network.ClassTelemetry: len(teleAck)},
			},
		},
		{
			name: "malformed packets",
			segs: []seg{up(lying, reserved, emptyTopic, qos3, pingreqPkt)},
			want: want{network.Up: {
				network.ClassOther:     sum(lying, reserved, emptyTopic, qos3),
				network.ClassKeepAlive: len(pingreqPkt),
			}},
		},
		{
			name: "malformed remaining length poisons only its direction",
			segs: []seg{up(tele), up(badLen), up(afterBad), down(teleAck), down(pingrespPkt)},
			want: want{
				network.Up:   {network.ClassTelemetry: len(tele), network.ClassOther: sum(badLen, afterBad)},
				network.Down: {network.ClassTelemetry: len(teleAck), network.ClassKeepAlive: len(pingrespPkt)},
			},
		},
		{
			name: "generic broker rules",
			rules: []Rule{
				{Pattern: "measures/+", Class: network.ClassTelemetry, Dir: UpOnly},
				{Pattern: "ack/", Class: network.ClassC2D, Dir: DownOnly},
				{Pattern: "cfg/#", Class: network.ClassTwin},
			},
			segs: []seg{
				up(mqttPublishPkt("measures/dev1", 1, 1, []byte("21.5"))), down(mqttAckPkt(mqttPuback, 1)),
				up(mqttPublishPkt("measures/dev1/extra", 0, 0, []byte("x"))), // + is one level
				down(mqttPublishPkt("measures/dev1", 0, 0, []byte("echo"))),  // rule is up only
				down(mqttPublishPkt("ack/dev1", 1, 5, []byte("ok"))), up(mqttAckPkt(mqttPuback, 5)),
				up(mqttPublishPkt("cfg", 0, 0, []byte("c"))), // # matches the parent
				down(mqttPublishPkt("cfg/a/b", 0, 0, []byte("c"))),
				up(mqttPublishPkt("devices/d/messages/events/", 0, 0, []byte("t"))), // built-ins still apply
			},
			want: want{
				network.Up: {
					network.ClassTelemetry: len(mqttPublishPkt("measures/dev1", 1, 1, []byte("21.5"))) + len(mqttPublishPkt("devices/d/messages/events/", 0, 0, []byte("t"))),
					network.ClassOther:     len(mqttPublishPkt("measures/dev1/extra", 0, 0, []byte("x"))),
					network.ClassC2D:       len(mqttAckPkt(mqttPuback, 5)),
					network.ClassTwin:      len(mqttPublishPkt("cfg", 0, 0, []byte("c"))),
				},
				network.Down: {
					network.ClassTelemetry: len(mqttAckPkt(mqttPuback, 1)),
					network.ClassOther:     len(mqttPublishPkt("measures/dev1", 0, 0, []byte("echo"))),
					network.ClassC2D:       len(mqttPublishPkt("ack/dev1", 1, 5, []byte("ok"))),
					network.ClassTwin:      len(mqttPublishPkt("cfg/a/b", 0, 0, []byte("c"))),
				},
			},
		},
		{
			name:  "rules come before the iothub table",
			rules: []Rule{{Pattern: "devices/+/messages/events/#", Class: network.ClassOther}},
			segs:  []seg{up(tele)},
			want:  want{network.Up: {network.ClassOther: len(tele)}},
		},
		{
			name:  "wildcard filter does not match $ topics",
			rules: []Rule{{Pattern: "#", Class: network.ClassTelemetry}},
			segs:  []seg{up(twinGet), up(mqttPublishPkt("a/b", 0, 0, nil))},
			want: want{network.Up: {
				network.ClassTwin:      len(twinGet),
				network.ClassTelemetry: len(mqttPublishPkt("a/b", 0, 0, nil)),
			}},
		},
		{
			name: "longest topic",
			segs: []seg{up(longest)},
			want: want{network.Up: {network.ClassTelemetry: len(longest)}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkSplits(t, newMQTTPender(tc.rules...), tc.segs, tc.want)
		})
	}
}

// TestMQTTInflightBound shows what the fixed packet-id table forgets: with 33
// publishes in flight the oldest acknowledgement can no longer be matched.
func TestMQTTInflightBound(t *testing.T) {
	var segs []seg
	for id := uint16(1); id <= 33; id++ {
		segs = append(segs, up(mqttPublishPkt("devices/d/messages/events/", 1, id, []byte("v"))))
	}
	for id := uint16(1); id <= 33; id++ {
		segs = append(segs, down(mqttAckPkt(mqttPuback, id)))
	}
	pub := len(mqttPublishPkt("devices/d/messages/events/", 1, 1, []byte("v")))
	ack := len(mqttAckPkt(mqttPuback, 1))
	tr := feed(t, NewMQTT(), segs)
	got := tr.tally()
	if got[network.Up][network.ClassTelemetry] != 33*pub {
		t.Errorf("up telemetry = %d, want %d", got[network.Up][network.ClassTelemetry], 33*pub)
	}
	if got[network.Down][network.ClassTelemetry] != 32*ack || got[network.Down][network.ClassOther] != ack {
		t.Errorf("down = %v, want 32 acks telemetry and the first one other", got)
	}
	if tr[network.Down][0] != network.ClassOther {
		t.Errorf("first PUBACK (oldest id) = %s, want other", tr[network.Down][0])
	}
}

func TestRuleValidate(t *testing.T) {
	tests := []struct {
		rule    Rule
		wantErr string
	}{
		{Rule{Pattern: "a/+/b", Class: network.ClassTelemetry}, ""},
		{Rule{Pattern: "a/#", Class: network.ClassTelemetry}, ""},
		{Rule{Pattern: "/measures/", Class: network.ClassTelemetry, Method: "POST"}, ""},
		{Rule{Pattern: "a/#/b"}, `rule "a/#/b": "#" must be the last segment (try "a/#")`},
		{Rule{Pattern: "a/b+"}, `rule "a/b+": a wildcard must fill a whole segment, as in "a/+/b" or "a/#"`},
		{Rule{Pattern: "a", Class: network.ClassOther + 1}, `rule "a": class 9 is not a known class`},
		{Rule{Pattern: "a", Dir: DownOnly + 1}, `rule "a": direction 3 is not up, down or either`},
		{Rule{Pattern: "a", Method: "GET X"}, `rule "a": method "GET X" contains white space`},
	}
	for _, tc := range tests {
		t.Run(tc.rule.Pattern, func(t *testing.T) {
			err := tc.rule.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Fatalf("Validate() = %q, want %q", got, tc.wantErr)
			}
		})
	}
	err := ValidateRules([]Rule{{Pattern: "ok"}, {Pattern: "x/#/y"}})
	if err == nil || err.Error() != fmt.Sprintf("rule 1: %s", Rule{Pattern: "x/#/y"}.Validate()) {
		t.Fatalf("ValidateRules = %v", err)
	}
}

func TestRuleMatch(t *testing.T) {
	tests := []struct {
		pattern, topic string
		want           bool
	}{
		{"sport/tennis/+", "sport/tennis/player1", true},
		{"sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"sport/tennis/+", "sport/tennis", false},
		{"sport/tennis/+", "sport/tennis/", true},
		{"sport/#", "sport", true},
		{"sport/#", "sport/tennis/player1", true},
		{"sport/#", "sports", false},
		{"+/+", "/finance", true},
		{"/+", "/finance", true},
		{"+", "/finance", false},
		{"#", "$SYS/x", false},
		{"+/monitor", "$SYS/monitor", false},
		{"$SYS/#", "$SYS/x", true},
		{"sport/", "sport/tennis", true},
		{"sport/", "sport", false},
		{"", "anything", true},
		{"/devices/+/telemetry", "/devices/d1/telemetry", true},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+" "+tc.topic, func(t *testing.T) {
			r := compileRules([]Rule{{Pattern: tc.pattern}})[0]
			if got := r.match([]byte(tc.topic)); got != tc.want {
				t.Fatalf("match(%q, %q) = %v, want %v", tc.pattern, tc.topic, got, tc.want)
			}
		})
	}
}

func cat(b ...[]byte) []byte { return bytes.Join(b, nil) }
