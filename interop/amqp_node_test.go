package interop

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
)

// nodeAMQPPackages are the npm packages amqp_device.js needs.
var nodeAMQPPackages = []string{"azure-iot-device", "azure-iot-device-amqp"}

// TestAMQPNodeDeviceSDK runs the official Azure IoT Node device SDK over
// AMQP and AMQP over WebSockets against an emulator on free ports:
// telemetry, twin, desired updates, C2D and a direct method.
//
// How the SDK finds the emulator: Amqp dials amqps://{GatewayHostName}, so
// GatewayHostName=127.0.0.1:PORT gives the port; AmqpWs always builds
// wss://{GatewayHostName or HostName}:443/$iothub/websocket, so its socket
// is routed by the SDK's amqp.webSocketAgent option.
func TestAMQPNodeDeviceSDK(t *testing.T) {
	node := requireNode(t, nodeAMQPPackages...)
	tests := []struct {
		transport string
		proto     hub.Protocol
		route     func(e *emulator) (gateway string, env []string)
	}{
		{"amqp", hub.AMQP, func(e *emulator) (string, []string) {
			return "127.0.0.1:" + strconv.Itoa(e.srv.AMQPPort()), nil
		}},
		{"amqp-ws", hub.AMQPWebSocket, func(e *emulator) (string, []string) {
			return "127.0.0.1", []string{"CATMSIM_WS_PORT=" + strconv.Itoa(e.srv.HTTPSPort())}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.transport, func(t *testing.T) {
			e := startEmulator(t, nil)
			gateway, env := tt.route(e)
			runNodeAMQPDevice(t, e, node, "node-amqp-"+tt.transport, tt.transport, gateway, env, tt.proto)
		})
	}
}

// runNodeAMQPDevice drives amqp_device.js through its plan and checks, after
// each step, what the hub recorded.
func runNodeAMQPDevice(t *testing.T, e *emulator, node, deviceID, transport, gateway string, env []string, proto hub.Protocol) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	h := e.hub()
	id := iothub.Identity{DeviceID: deviceID}
	events := watch(t, h)
	if _, err := h.AddDevice(hub.Registration{Identity: id, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.UpdateDesired(id, map[string]any{"firmwareTarget": "2.1.0"}); err != nil {
		t.Fatal(err)
	}
	cs, err := h.DeviceConnectionString(deviceID, gateway)
	if err != nil {
		t.Fatal(err)
	}
	var plan nodePlan
	plan.Telemetry.Body = `{"temperature":21.5,"humidity":48}`
	plan.Telemetry.MessageID = "msg-" + deviceID
	plan.Telemetry.ContentType = "application/json"
	plan.Telemetry.ContentEncoding = "utf-8"
	plan.Telemetry.Properties = [][2]string{{"temperatureAlert", "true"}, {"route", "floor/2 & room=7"}}
	plan.Reported = map[string]any{"firmware": "1.0.3", "interop": map[string]any{"client": "azure-iot-device-amqp", "transport": transport}}
	plan.Method = "reboot"
	plan.MethodStatus = 201
	planJSON, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	env = append(env,
		"CATMSIM_CONNECTION_STRING="+cs,
		"CATMSIM_TRANSPORT="+transport,
		"CATMSIM_CA_FILE="+e.caFile,
		"CATMSIM_PLAN="+string(planJSON),
		"DEBUG=azure-iot-device*,azure-iot-amqp-base*,rhea:frames",
	)
	p := startProcess(ctx, t, "amqp_device.js ("+transport+")", nodeDir(t), env, node, "amqp_device.js")

	// Telemetry: sendEvent completes on the hub's accepted disposition, which
	// it sends after storing the message.
	p.expect(ctx, "connected", nil)
	p.expect(ctx, "sent", nil)
	got := storedFor(ctx, t, h, id, 1)[0]
	m := got.Message
	if got.Protocol != proto || m.MessageID != plan.Telemetry.MessageID || m.ContentType != plan.Telemetry.ContentType ||
		m.ContentEncoding != plan.Telemetry.ContentEncoding || string(m.Body) != plan.Telemetry.Body {
		t.Errorf("stored %+v over %s", m, got.Protocol)
	}
	var wantProps []iothub.Property
	for _, kv := range plan.Telemetry.Properties {
		wantProps = append(wantProps, iothub.Property{Name: kv[0], Value: kv[1]})
	}
	if !reflect.DeepEqual(m.Properties, wantProps) {
		t.Errorf("stored application properties %q, want %q", m.Properties, wantProps)
	}
	if got.System[iothub.PropConnectionDeviceID] != deviceID || !strings.Contains(got.System[iothub.PropConnectionAuth], `"scope":"device","type":"symkey"`) {
		t.Errorf("hub-stamped properties %q", got.System)
	}

	// Twin GET and reported patch over the twin links.
	tw := decode[struct{ Desired, Reported map[string]any }](t, p.expect(ctx, "twin", nil))
	if tw.Desired["firmwareTarget"] != "2.1.0" || tw.Desired["$version"] != float64(2) || tw.Reported["$version"] != float64(1) {
		t.Errorf("the SDK's twin after GET: desired %v, reported %v", tw.Desired, tw.Reported)
	}
	p.expect(ctx, "desired_subscribed", nil)
	p.expect(ctx, "reported", nil)
	twin, err := h.GetTwin(id)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, twin.Reported, plan.Reported) || twin.ReportedVersion != 2 {
		t.Errorf("hub's reported properties %v at $version %d, want %v at $version 2", twin.Reported, twin.ReportedVersion, plan.Reported)
	}
	p.expect(ctx, "ready", nil)

	// A desired update, pushed after the SDK's PUT.
	after, err := h.UpdateDesired(id, map[string]any{"telemetryInterval": 42, "led": map[string]any{"color": "green"}})
	if err != nil {
		t.Fatal(err)
	}
	patch := decode[struct{ Patch map[string]any }](t, p.expect(ctx, "desired", func(raw json.RawMessage) bool {
		return strings.Contains(string(raw), "telemetryInterval")
	})).Patch
	if want := map[string]any{"telemetryInterval": 42, "led": map[string]any{"color": "green"}, "$version": after.DesiredVersion}; !sameJSON(t, patch, want) {
		t.Errorf("the SDK got desired patch %v, want %v", patch, want)
	}

	// Cloud-to-device: received, then completed (accepted) by the SDK.
	c2dID := "c2d-" + deviceID
	if _, err := h.SendC2D(deviceID, iothub.Message{Body: []byte("open valve 3"), MessageID: c2dID, CorrelationID: "corr-" + deviceID,
		Properties: []iothub.Property{{Name: "command", Value: "open"}, {Name: "target", Value: "/valves/3 & 4"}}}, hub.C2DOptions{Ack: "full"}); err != nil {
		t.Fatal(err)
	}
	c2d := decode[struct {
		MessageID, To, CorrelationID, Ack, Data string
		Properties                              map[string]string
	}](t, p.expect(ctx, "c2d", nil))
	if c2d.MessageID != c2dID || c2d.CorrelationID != "corr-"+deviceID || c2d.To != "/devices/"+deviceID+"/messages/deviceBound" || c2d.Data != "open valve 3" || c2d.Ack != "full" {
		t.Errorf("the SDK got C2D %+v", c2d)
	}
	if want := map[string]string{"command": "open", "target": "/valves/3 & 4"}; !reflect.DeepEqual(c2d.Properties, want) {
		t.Errorf("the SDK got C2D properties %q, want %q", c2d.Properties, want)
	}
	p.expect(ctx, "c2d_completed", nil)
	waitEvent(ctx, t, events, "the C2D completion", func(ev hub.Event) bool {
		return ev.Kind == hub.EventC2DCompleted && ev.Identity == id && ev.Detail == c2dID
	})
	if fb := h.TakeFeedback(0); len(fb) != 1 || fb[0].OriginalMessageID != c2dID || fb[0].StatusCode != "Success" {
		t.Errorf("C2D feedback %+v, want one Success record for %s", fb, c2dID)
	}

	// A direct method, answered by the SDK: the uuid correlation-id the hub
	// sends comes back as the SDK's request id.
	res, err := h.InvokeMethod(ctx, id, plan.Method, []byte(`{"delaySeconds":5}`), 15*time.Second, 15*time.Second)
	if err != nil {
		t.Fatalf("invoking %s: %v", plan.Method, err)
	}
	call := decode[struct {
		Name    string
		Payload map[string]any
	}](t, p.expect(ctx, "method", nil))
	if call.Name != plan.Method || call.Payload["delaySeconds"] != float64(5) {
		t.Errorf("the SDK got method call %+v", call)
	}
	var answer any
	if err := json.Unmarshal(res.Payload, &answer); err != nil {
		t.Fatalf("method result payload %q: %v", res.Payload, err)
	}
	if want := map[string]any{"received": map[string]any{"delaySeconds": 5}, "by": "azure-iot-device-amqp"}; res.Status != plan.MethodStatus || !sameJSON(t, answer, want) {
		t.Errorf("method result status %d payload %s, want %d %v", res.Status, res.Payload, plan.MethodStatus, want)
	}
	p.expect(ctx, "method_answered", nil)

	// A clean close shows the device offline, with nothing stored twice.
	p.closeAndWait(ctx)
	waitEvent(ctx, t, events, "the disconnection", func(ev hub.Event) bool {
		return ev.Kind == hub.EventDisconnected && ev.Identity == id
	})
	if h.Connected(id) {
		t.Error("the hub still shows the device connected")
	}
	if n := h.Store().CountFor(id); n != 1 {
		t.Errorf("the hub stored %d messages from the device, want 1", n)
	}
	if n := h.Stats().Protocols[proto].Connects; n != 1 {
		t.Errorf("%d device connections over %s, want 1: the SDK's links share one", n, proto)
	}
}
