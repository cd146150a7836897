package interop

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// The Node SDKs' HTTP transports build https://{HostName}{path} and take no
// port, so these tests run the emulator on IoT Hub's port 443 with HostName
// 127.0.0.1: the SDKs are used unchanged. They skip when 443 cannot be bound.
func startStandardHTTPS(t *testing.T) *emulator {
	t.Helper()
	e, err := newEmulator(t, func(c *hub.ServerConfig) {
		c.Hub.HostName = "127.0.0.1"
		c.HTTPSPort = hub.StandardHTTPSPort
	})
	if err != nil {
		t.Skipf("skipping: port %d on 127.0.0.1 is taken or not bindable here (%v); the Node SDKs' HTTP transports cannot use another port", hub.StandardHTTPSPort, err)
	}
	return e
}

// TestNodeDeviceSDKOverHTTP drives azure-iot-device-http: an event with
// properties, a batch, and a cloud-to-device message received by polling and
// completed.
func TestNodeDeviceSDKOverHTTP(t *testing.T) {
	node := requireNode(t, "azure-iot-device", "azure-iot-device-http")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	e := startStandardHTTPS(t)
	h := e.hub()
	id := iothub.Identity{DeviceID: "node-http"}
	cs, err := h.DeviceConnectionString(id.DeviceID, "")
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(ctx, t, "http_device.js", nodeDir(t), []string{"CATMSIM_CONNECTION_STRING=" + cs, "CATMSIM_CA_FILE=" + e.caFile}, node, "http_device.js")
	p.expect(ctx, "sent", nil)
	p.expect(ctx, "batch_sent", nil)
	got := storedFor(ctx, t, h, id, 3)
	if len(got) != 3 {
		t.Fatalf("stored %d messages, want 3", len(got))
	}
	first := got[0]
	if first.Protocol != hub.HTTPS || first.Message.MessageID != "http-1" || string(first.Message.Body) != `{"t":20.5}` {
		t.Errorf("event stored as %+v", first)
	}
	if v, _ := first.Message.Get("site"); v != "plant 1/line 2" {
		t.Errorf("property site = %q, want %q (properties %+v)", v, "plant 1/line 2", first.Message.Properties)
	}
	// The SDK's batch body carries each message's body and application
	// properties only: its message ids never reach the hub.
	for i, want := range []string{"b1", "b2"} {
		m := got[i+1]
		if string(m.Message.Body) != want || m.Message.MessageID != "" {
			t.Errorf("batch message %d stored as body %q id %q", i, m.Message.Body, m.Message.MessageID)
		}
		if v, _ := m.Message.Get("n"); v != strconv.Itoa(i+1) {
			t.Errorf("batch message %d property n = %q", i, v)
		}
	}
	if _, err := h.SendC2D(id.DeviceID, iothub.Message{Body: []byte("open valve"), MessageID: "http-c2d", Properties: []iothub.Property{{Name: "valve", Value: "3"}}}, hub.C2DOptions{}); err != nil {
		t.Fatal(err)
	}
	raw := p.expect(ctx, "c2d", nil)
	c2d := decode[struct {
		MessageID  string            `json:"messageId"`
		Body       string            `json:"body"`
		Properties map[string]string `json:"properties"`
	}](t, raw)
	// The SDK keeps the header's iothub-app- prefix in the property's name.
	if c2d.MessageID != "http-c2d" || c2d.Body != "open valve" || c2d.Properties["iothub-app-valve"] != "3" {
		t.Errorf("the SDK received %+v", c2d)
	}
	// The device emits "c2d" after the hub answered its DELETE.
	if n := h.Stats().C2D["completed"]; n != 1 || h.C2DPending(id.DeviceID) != 0 {
		t.Errorf("after the SDK completed the message the hub counts %d completed, %d pending", n, h.C2DPending(id.DeviceID))
	}
	p.closeAndWait(ctx)
}

// TestNodeServiceSDK drives azure-iothub's registry and method APIs: create a
// device (the hub generates its keys), read it, patch its twin with the
// etag, refuse a duplicate, invoke a method on a device connected over MQTT,
// and get DeviceNotOnline for one that is not.
func TestNodeServiceSDK(t *testing.T) {
	node := requireNode(t, "azure-iothub")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	e := startStandardHTTPS(t)
	h := e.hub()
	target := connectMethodDevice(t, e, "mqtt-target")
	defer target.Disconnect(0)
	svc, err := h.ServiceConnectionString("iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(ctx, t, "service.js", nodeDir(t), []string{
		"CATMSIM_SERVICE_CONNECTION_STRING=" + svc,
		"CATMSIM_NEW_DEVICE=sdk-created",
		"CATMSIM_METHOD_DEVICE=mqtt-target",
		"NODE_EXTRA_CA_CERTS=" + e.caFile,
	}, node, "service.js")
	created := decode[struct {
		DeviceID   string `json:"deviceId"`
		PrimaryKey string `json:"primaryKey"`
	}](t, p.expect(ctx, "created", nil))
	reg, ok := h.Registration(iothub.Identity{DeviceID: "sdk-created"})
	if !ok || created.DeviceID != "sdk-created" || created.PrimaryKey != sas.EncodeKey(reg.Keys[0]) {
		t.Fatalf("created %+v; registry has %v %v", created, ok, reg.Identity)
	}
	got := decode[map[string]string](t, p.expect(ctx, "got", nil))
	if got["status"] != "enabled" || got["connectionState"] != "Disconnected" {
		t.Errorf("get returned %v", got)
	}
	p.expect(ctx, "twin_updated", nil)
	tw, err := h.GetTwin(iothub.Identity{DeviceID: "sdk-created"})
	if err != nil || tw.Desired["interval"] != json.Number("30") || tw.Tags["site"] != "plant-1" || tw.DesiredVersion != 2 {
		t.Errorf("twin after the SDK's patch: %+v %v", tw, err)
	}
	dup := decode[map[string]any](t, p.expect(ctx, "duplicate", nil))
	if dup["error"] != "DeviceAlreadyExistsError" {
		t.Errorf("creating the device twice gave %v, want DeviceAlreadyExistsError", dup["error"])
	}
	method := decode[struct {
		Status  int            `json:"status"`
		Payload map[string]any `json:"payload"`
	}](t, p.expect(ctx, "method", nil))
	if method.Status != 200 || method.Payload["rebooted"] != true || method.Payload["delay"] != float64(5) {
		t.Errorf("method result %+v", method)
	}
	// The SDK has no error type for DeviceNotOnline: a 404 whose code is not
	// DeviceNotFound becomes a plain "Not found" error carrying the response.
	off := decode[map[string]any](t, p.expect(ctx, "offline", nil))
	if off["status"] != float64(404) || !strings.Contains(fmt.Sprint(off["body"]), "ErrorCode:DeviceNotOnline;") {
		t.Errorf("invoking a method on an offline device gave %v, want a 404 with ErrorCode DeviceNotOnline", off)
	}
}

// connectMethodDevice connects a paho device over MQTT that answers "reboot"
// with its request payload plus {"rebooted": true}.
func connectMethodDevice(t *testing.T, e *emulator, id string) paho.Client {
	t.Helper()
	h := e.hub()
	tok := sas.Sign(sas.DeviceResource(h.HostName(), id, ""), sas.DeriveKey(groupKey, id), "", time.Now().Add(time.Hour))
	opts := paho.NewClientOptions().AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", e.srv.MQTTPort())).SetClientID(id).
		SetUsername(iothub.FormatUsername(h.HostName(), iothub.Identity{DeviceID: id}, apiVersion, "", "")).SetPassword(tok).
		SetTLSConfig(&tls.Config{RootCAs: e.srv.Chain().CertPool(), ServerName: h.HostName()}).SetProtocolVersion(4).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("connecting %s: %v", id, tk.Error())
	}
	tk := c.Subscribe(iothub.MethodsFilter, 0, func(c paho.Client, m paho.Message) {
		hp, err := iothub.ParseHubPublish(m.Topic())
		if err != nil {
			return
		}
		var in map[string]any
		_ = json.Unmarshal(m.Payload(), &in)
		if in == nil {
			in = map[string]any{}
		}
		in["rebooted"] = true
		out, _ := json.Marshal(in)
		c.Publish(iothub.MethodResponseTopic(200, hp.RID), 0, false, out)
	})
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribing %s: %v", id, tk.Error())
	}
	return c
}

// TestCurlSendsEvent posts telemetry with curl and a SAS Authorization header,
// the way shell scripts and hand-written firmware test the REST API, and checks
// the hub's answer to a bad token.
func TestCurlSendsEvent(t *testing.T) {
	curl := requireTool(t, "curl", "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := startEmulator(t, nil)
	h := e.hub()
	url := fmt.Sprintf("https://127.0.0.1:%d/devices/curl-dev/messages/events?api-version=%s", e.srv.HTTPSPort(), apiVersion)
	post := func(token string) (string, error) {
		cmd := exec.CommandContext(ctx, curl, "-sS", "--cacert", e.caFile, "-X", "POST",
			"-H", "Authorization: "+token, "-H", "iothub-app-source: curl", "-H", "iothub-messageid: curl-1",
			"-H", "Content-Type: application/json", "--data-binary", `{"reading":7}`,
			"-o", "-", "-w", "\n%{http_code}", url)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	out, err := post(e.token("curl-dev"))
	if err != nil || !strings.HasSuffix(out, "204") {
		t.Fatalf("curl: %v: %s", err, out)
	}
	got := storedFor(ctx, t, h, iothub.Identity{DeviceID: "curl-dev"}, 1)
	if got[0].Message.MessageID != "curl-1" || string(got[0].Message.Body) != `{"reading":7}` || got[0].Protocol != hub.HTTPS {
		t.Errorf("stored %+v", got[0])
	}
	if v, _ := got[0].Message.Get("source"); v != "curl" {
		t.Errorf("property source = %q", v)
	}
	bad := sas.Sign(sas.DeviceResource(h.HostName(), "curl-dev", ""), []byte("wrong key"), "", time.Now().Add(time.Hour))
	out, err = post(bad)
	if err != nil || !strings.HasSuffix(out, "401") || !strings.Contains(out, "ErrorCode:IotHubUnauthorizedAccess;") {
		t.Fatalf("bad token: %v: %s", err, out)
	}
	if h.Store().Len() != 1 {
		t.Errorf("the hub stored %d messages, want 1", h.Store().Len())
	}
}
