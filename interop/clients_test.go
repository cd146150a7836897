package interop

import (
	"context"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// publish is what one run of a command line client sends.
type publish struct {
	deviceID, password, topic, payload string
}

// publisher is a one-shot command line MQTT client that connects, publishes
// one message at QoS 1 and disconnects.
type publisher struct {
	name string
	// require skips the test when the client is not installed and returns
	// what to run it with.
	require func(t *testing.T) string
	argv    func(e *emulator, bin string, p publish) []string
	// refusalFails says whether the client's exit status reports a refused
	// CONNECT; MQTT.js's command line prints the error and exits 0.
	refusalFails bool
}

var publishers = []publisher{
	{
		name: "paho-python",
		require: func(t *testing.T) string {
			requirePaho(t)
			script, err := filepath.Abs(filepath.Join("python", "paho_single.py"))
			if err != nil {
				t.Fatal(err)
			}
			return script
		},
		argv: func(e *emulator, script string, p publish) []string {
			return []string{debianPython, script,
				"--hostname", "127.0.0.1", "--port", strconv.Itoa(e.srv.MQTTPort()), "--hub", hubHost,
				"--device", p.deviceID, "--sas-token", p.password, "--ca-file", e.caFile,
				"--topic", p.topic, "--payload", p.payload}
		},
		refusalFails: true,
	},
	{
		name:    "mosquitto_pub",
		require: func(t *testing.T) string { return requireTool(t, "mosquitto_pub", "mosquitto-clients") },
		argv: func(e *emulator, bin string, p publish) []string {
			return []string{bin, "-h", "127.0.0.1", "-p", strconv.Itoa(e.srv.MQTTPort()), "--cafile", e.caFile,
				"-i", p.deviceID, "-u", username(p.deviceID), "-P", p.password,
				"-t", p.topic, "-q", "1", "-V", "mqttv311", "-m", p.payload}
		},
		refusalFails: true,
	},
	{
		name: "mqtt.js",
		require: func(t *testing.T) string {
			requireNode(t, "mqtt")
			return filepath.Join(nodeDir(t), "node_modules", ".bin", "mqtt")
		},
		argv: func(e *emulator, bin string, p publish) []string {
			return []string{bin, "publish", "-h", "127.0.0.1", "-p", strconv.Itoa(e.srv.MQTTPort()), "-C", "mqtts", "--ca", e.caFile,
				"-i", p.deviceID, "-u", username(p.deviceID), "-P", p.password,
				"-t", p.topic, "-q", "1", "-m", p.payload,
				// MQTT 3.1.1 (level 4), as IoT Hub requires; reconnecting after a
				// refusal would only repeat it.
				"--protocolVersion", "4", "--reconnectPeriod", "0"}
		},
		refusalFails: false,
	},
}

// TestCommandLinePublishers publishes with Paho for Python, mosquitto_pub and
// MQTT.js's command line, checking each message as the hub stored it, and
// checks that a token signed with the wrong key is refused and stores nothing.
func TestCommandLinePublishers(t *testing.T) {
	t.Parallel()
	e := startEmulator(t, nil)
	h := e.hub()
	for i, pub := range publishers {
		t.Run(pub.name, func(t *testing.T) {
			bin := pub.require(t)
			tests := []struct {
				name  string
				topic func(id string) string
				want  func(id string) iothub.Message
			}{
				{
					name:  "sample topic",
					topic: func(id string) string { return "devices/" + id + "/messages/events/" },
					want:  func(string) iothub.Message { return iothub.Message{Body: []byte(`{"temperature":20.1}`)} },
				},
				{
					// System properties with a literal "$.", as hand-written
					// clients write them, and escaped application values.
					name: "property bag",
					topic: func(id string) string {
						return "devices/" + id + "/messages/events/$.mid=m-" + id + "&$.ct=application%2Fjson&$.ce=utf-8&client=" + pub.name + "&note=a%20b%2Fc%26d"
					},
					want: func(id string) iothub.Message {
						return iothub.Message{
							Body:            []byte(`{"temperature":20.2}`),
							MessageID:       "m-" + id,
							ContentType:     "application/json",
							ContentEncoding: "utf-8",
							Properties:      []iothub.Property{{Name: "client", Value: pub.name}, {Name: "note", Value: "a b/c&d"}},
						}
					},
				},
			}
			for j, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					id := iothub.Identity{DeviceID: "cli-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)}
					want := tt.want(id.DeviceID)
					events := watch(t, h)
					out, err := runTool(ctx, pub.argv(e, bin, publish{deviceID: id.DeviceID, password: e.token(id.DeviceID), topic: tt.topic(id.DeviceID), payload: string(want.Body)}), nil)
					if err != nil {
						t.Fatalf("%s failed: %v\n%s", pub.name, err, out)
					}
					// QoS 1: the client exits after the PUBACK, which the hub
					// sends once the message is stored.
					got := storedFor(ctx, t, h, id, 1)
					if len(got) != 1 {
						t.Fatalf("the hub stored %d messages from %s, want 1", len(got), id)
					}
					sm := got[0]
					if sm.Protocol != hub.MQTT || sm.System[iothub.PropConnectionDeviceID] != id.DeviceID {
						t.Errorf("stored with protocol %q and device %q", sm.Protocol, sm.System[iothub.PropConnectionDeviceID])
					}
					if !reflect.DeepEqual(sm.Message, want) {
						t.Errorf("stored message\n%+v\nwant\n%+v\n%s output:\n%s", sm.Message, want, pub.name, out)
					}
					waitEvent(ctx, t, events, "the client's disconnection", func(ev hub.Event) bool {
						return ev.Kind == hub.EventDisconnected && ev.Identity == id
					})
				})
			}
			t.Run("token signed with the wrong key", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				id := iothub.Identity{DeviceID: "cli-" + strconv.Itoa(i) + "-refused"}
				events := watch(t, h)
				bad := sas.Sign(sas.DeviceResource(hubHost, id.DeviceID, ""), []byte("not the device key"), "", time.Now().Add(time.Hour))
				out, err := runTool(ctx, pub.argv(e, bin, publish{deviceID: id.DeviceID, password: bad, topic: "devices/" + id.DeviceID + "/messages/events/", payload: "refused"}), nil)
				if ctx.Err() != nil {
					t.Fatalf("%s did not finish: %v\n%s", pub.name, err, out)
				}
				if pub.refusalFails && err == nil {
					t.Errorf("%s exited 0 after a refused CONNECT:\n%s", pub.name, out)
				}
				// CONNACK return code 5, as the client names it.
				if !strings.Contains(strings.ToLower(out), "not authori") {
					t.Errorf("%s did not report \"not authorized\":\n%s", pub.name, out)
				}
				ev := waitEvent(ctx, t, events, "the authentication failure", func(ev hub.Event) bool {
					return ev.Kind == hub.EventAuthFailed && ev.Identity == id
				})
				if n := h.Store().CountFor(id); n != 0 {
					t.Errorf("the hub stored %d messages from a refused client", n)
				}
				if h.Connected(id) {
					t.Error("the hub shows a refused client connected")
				}
				t.Logf("refused as the hub should (%s); %s said: %s", ev.Detail, pub.name, refusalLine(out))
			})
		})
	}
}

// refusalLine is the line of a client's output that tells of the refusal, or
// its first line.
func refusalLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		if strings.Contains(strings.ToLower(l), "refused") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(lines[0])
}
