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

// nodePlan is what device.js does; see its header.
type nodePlan struct {
	Telemetry struct {
		Body            string      `json:"body"`
		MessageID       string      `json:"messageId"`
		ContentType     string      `json:"contentType"`
		ContentEncoding string      `json:"contentEncoding"`
		Properties      [][2]string `json:"properties"`
	} `json:"telemetry"`
	Reported     map[string]any `json:"reported"`
	Method       string         `json:"method"`
	MethodStatus int            `json:"methodStatus"`
}

// nodeSDKPackages are the npm packages device.js needs.
var nodeSDKPackages = []string{"azure-iot-device", "azure-iot-device-mqtt"}

// TestNodeDeviceSDK runs the official Azure IoT Node device SDK over MQTT and
// MQTT over WebSockets against an emulator on free ports.
func TestNodeDeviceSDK(t *testing.T) {
	node := requireNode(t, nodeSDKPackages...)
	tests := []struct {
		transport string
		proto     hub.Protocol
		// route says where the SDK's socket goes: GatewayHostName, and the
		// port device.js's WebSocket agent dials (none for MQTT).
		route func(e *emulator) (gateway string, env []string)
	}{
		{"mqtt", hub.MQTT, func(e *emulator) (string, []string) {
			return "127.0.0.1:" + strconv.Itoa(e.srv.MQTTPort()), nil
		}},
		{"mqtt-ws", hub.MQTTWebSocket, func(e *emulator) (string, []string) {
			return "127.0.0.1", []string{"CATMSIM_WS_PORT=" + strconv.Itoa(e.srv.HTTPSPort())}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.transport, func(t *testing.T) {
			e := startEmulator(t, nil)
			gateway, env := tt.route(e)
			runNodeDevice(t, e, node, "node-sdk-"+tt.transport, tt.transport, gateway, env, tt.proto)
		})
	}
}

// TestNodeDeviceSDKStandardPorts runs the SDK's transports unchanged, with only
// GatewayHostName=127.0.0.1: MQTT to 8883 and MQTT-WS to 443, IoT Hub's ports,
// which the SDK's URLs name. It skips when either port cannot be bound.
func TestNodeDeviceSDKStandardPorts(t *testing.T) {
	node := requireNode(t, nodeSDKPackages...)
	e, err := newEmulator(t, func(c *hub.ServerConfig) {
		c.MQTTPort, c.HTTPSPort = hub.StandardMQTTPort, hub.StandardHTTPSPort
	})
	if err != nil {
		t.Skipf("skipping: the standard ports %d and %d on 127.0.0.1 are taken or not bindable here (%v); the tests on free ports cover the same ground", hub.StandardMQTTPort, hub.StandardHTTPSPort, err)
	}
	for _, tt := range []struct {
		transport string
		proto     hub.Protocol
	}{{"mqtt", hub.MQTT}, {"mqtt-ws", hub.MQTTWebSocket}} {
		t.Run(tt.transport, func(t *testing.T) {
			runNodeDevice(t, e, node, "node-sdk-std-"+tt.transport, tt.transport, "127.0.0.1", nil, tt.proto)
		})
	}
}

// TestNodeDeviceSDKTokenRenewal gives the SDK tokens valid for a few seconds.
// MQTT has no in-band renewal, so the SDK reconnects with each new token; the
// hub must take every new CONNECT, and it severs a connection only when its
// token expires, which a renewing SDK never lets happen.
func TestNodeDeviceSDKTokenRenewal(t *testing.T) {
	node := requireNode(t, nodeSDKPackages...)
	// Mostly waiting for the SDK's renewal timer: it runs beside the other
	// tests that allow it.
	t.Parallel()
	// The SDK renews tokenSeconds-tokenMargin seconds after each connect; the
	// margin leaves a slow reconnect time to finish before the old token
	// expires.
	const tokenSeconds, tokenMargin = 6, 3
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	e := startEmulator(t, nil)
	h := e.hub()
	id := iothub.Identity{DeviceID: "node-sdk-renewal"}
	events := watch(t, h)
	cs, err := h.DeviceConnectionString(id.DeviceID, "127.0.0.1:"+strconv.Itoa(e.srv.MQTTPort()))
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(ctx, t, "renew.js", nodeDir(t), []string{
		"CATMSIM_CONNECTION_STRING=" + cs,
		"CATMSIM_CA_FILE=" + e.caFile,
		"CATMSIM_TOKEN_SECONDS=" + strconv.Itoa(tokenSeconds),
		"CATMSIM_TOKEN_MARGIN=" + strconv.Itoa(tokenMargin),
		"DEBUG=azure-iot-device*,azure-iot-mqtt-base*",
	}, node, "renew.js")
	p.expect(ctx, "connected", nil)

	// The first connection and two renewals: by the second renewal the first
	// token has expired.
	for connects := 0; connects < 3; connects++ {
		waitEvent(ctx, t, events, "a connection with a renewed token", func(ev hub.Event) bool {
			return ev.Kind == hub.EventConnected && ev.Identity == id
		})
	}
	p.send("send after-renewal")
	p.expect(ctx, "sent", nil)
	got := storedFor(ctx, t, h, id, 1)
	if len(got) != 1 || got[0].Message.MessageID != "after-renewal" {
		t.Errorf("stored %+v, want the one message sent after renewing", got)
	}
	if n := h.Stats().TokenExpiries; n != 0 {
		t.Errorf("the hub severed %d connections for expired tokens although the SDK renewed each in time", n)
	}
	if !h.Connected(id) {
		t.Error("the hub shows the renewing device disconnected")
	}
	p.closeAndWait(ctx)
}

// runNodeDevice drives device.js through telemetry, twin GET, a reported patch,
// a desired update, a C2D message and a direct method, checking after each
// step what the hub recorded.
func runNodeDevice(t *testing.T, e *emulator, node, deviceID, transport, gateway string, env []string, proto hub.Protocol) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	h := e.hub()
	id := iothub.Identity{DeviceID: deviceID}
	events := watch(t, h)

	// The service registers the device and sets a desired property before the
	// device first connects, so that its twin GET has something to return.
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
	// Values that need escaping in a topic: '/', ' ', '&', '='.
	plan.Telemetry.Properties = [][2]string{{"temperatureAlert", "true"}, {"route", "floor/2 & room=7"}}
	plan.Reported = map[string]any{"firmware": "1.0.3", "interop": map[string]any{"client": "azure-iot-device", "transport": transport}}
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
		// The SDK's own debug log goes to stderr, which a failing test prints.
		"DEBUG=azure-iot-device*,azure-iot-mqtt-base*,mqttjs*",
	)
	p := startProcess(ctx, t, "device.js ("+transport+")", nodeDir(t), env, node, "device.js")

	// Telemetry: the SDK's sendEvent completes on PUBACK, which the emulator
	// sends after storing the message.
	p.expect(ctx, "connected", nil)
	p.expect(ctx, "sent", nil)
	got := storedFor(ctx, t, h, id, 1)[0]
	if got.Protocol != proto {
		t.Errorf("stored protocol %q, want %q", got.Protocol, proto)
	}
	m := got.Message
	if m.MessageID != plan.Telemetry.MessageID || m.ContentType != plan.Telemetry.ContentType || m.ContentEncoding != plan.Telemetry.ContentEncoding {
		t.Errorf("stored system properties: message id %q, content type %q, content encoding %q; want %q, %q, %q",
			m.MessageID, m.ContentType, m.ContentEncoding, plan.Telemetry.MessageID, plan.Telemetry.ContentType, plan.Telemetry.ContentEncoding)
	}
	if string(m.Body) != plan.Telemetry.Body {
		t.Errorf("stored body %q, want %q", m.Body, plan.Telemetry.Body)
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

	// Twin GET: the SDK's view is the hub's.
	tw := decode[struct{ Desired, Reported map[string]any }](t, p.expect(ctx, "twin", nil))
	if tw.Desired["firmwareTarget"] != "2.1.0" || tw.Desired["$version"] != float64(2) || tw.Reported["$version"] != float64(1) {
		t.Errorf("the SDK's twin after GET: desired %v, reported %v; want firmwareTarget 2.1.0 at $version 2, reported at $version 1", tw.Desired, tw.Reported)
	}

	// Reported patch.
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

	// Desired update, pushed while the SDK is subscribed.
	desired := map[string]any{"telemetryInterval": 42, "led": map[string]any{"color": "green"}}
	after, err := h.UpdateDesired(id, desired)
	if err != nil {
		t.Fatal(err)
	}
	patch := decode[struct{ Patch map[string]any }](t, p.expect(ctx, "desired", func(raw json.RawMessage) bool {
		return strings.Contains(string(raw), "telemetryInterval")
	})).Patch
	wantPatch := map[string]any{"telemetryInterval": 42, "led": map[string]any{"color": "green"}, "$version": after.DesiredVersion}
	if !sameJSON(t, patch, wantPatch) {
		t.Errorf("the SDK got desired patch %v, want %v", patch, wantPatch)
	}

	// Cloud-to-device message: received, then completed by the SDK.
	c2dID := "c2d-" + deviceID
	if _, err := h.SendC2D(deviceID, iothub.Message{
		Body:          []byte("open valve 3"),
		MessageID:     c2dID,
		CorrelationID: "corr-" + deviceID,
		Properties:    []iothub.Property{{Name: "command", Value: "open"}, {Name: "target", Value: "/valves/3 & 4=open?"}},
	}, hub.C2DOptions{Ack: "full"}); err != nil {
		t.Fatal(err)
	}
	c2d := decode[struct {
		MessageID, To, CorrelationID, Data string
		Properties                         map[string]string
	}](t, p.expect(ctx, "c2d", nil))
	wantTo := "/devices/" + deviceID + "/messages/deviceBound"
	if c2d.MessageID != c2dID || c2d.CorrelationID != "corr-"+deviceID || c2d.To != wantTo || c2d.Data != "open valve 3" {
		t.Errorf("the SDK got C2D %+v, want message id %q, correlation id %q, to %q, data %q", c2d, c2dID, "corr-"+deviceID, wantTo, "open valve 3")
	}
	wantC2DProps := map[string]string{"command": "open", "target": "/valves/3 & 4=open?", iothub.PropAck: "full"}
	if !reflect.DeepEqual(c2d.Properties, wantC2DProps) {
		t.Errorf("the SDK got C2D properties %q, want %q", c2d.Properties, wantC2DProps)
	}
	p.expect(ctx, "c2d_completed", nil)
	waitEvent(ctx, t, events, "the C2D completion", func(ev hub.Event) bool {
		return ev.Kind == hub.EventC2DCompleted && ev.Identity == id && ev.Detail == c2dID
	})
	if n := h.C2DPending(deviceID); n != 0 {
		t.Errorf("%d C2D messages still pending after completion", n)
	}
	if fb := h.TakeFeedback(0); len(fb) != 1 || fb[0].OriginalMessageID != c2dID || fb[0].StatusCode != "Success" {
		t.Errorf("C2D feedback %+v, want one Success record for %s", fb, c2dID)
	}

	// Direct method, answered by the SDK.
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
	wantAnswer := map[string]any{"received": map[string]any{"delaySeconds": 5}, "by": "azure-iot-device"}
	if res.Status != plan.MethodStatus || !sameJSON(t, answer, wantAnswer) {
		t.Errorf("method result status %d payload %s, want %d %v", res.Status, res.Payload, plan.MethodStatus, wantAnswer)
	}
	p.expect(ctx, "method_answered", nil)

	// A clean close: the SDK disconnects and the hub shows the device offline,
	// with nothing stored twice.
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
}

// sameJSON reports whether a and b encode to the same JSON value.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	norm := func(v any) any {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encoding %v: %v", v, err)
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
