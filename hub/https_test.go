package hub

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// restClient talks to the emulator's HTTPS port; keepAlive=false opens a new
// TLS connection for every request, as MicroPython's urequests does.
type restClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newREST(t *testing.T, s *Server, keepAlive bool) *restClient {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Chain().CertPool(), ServerName: "test.azure-devices.net"}, DisableKeepAlives: !keepAlive}
	t.Cleanup(tr.CloseIdleConnections)
	return &restClient{t: t, base: fmt.Sprintf("https://127.0.0.1:%d", s.HTTPSPort()), c: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

func (c *restClient) do(method, path, auth string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func devTok(id string, ttl time.Duration) string {
	return sas.Sign(sas.DeviceResource("test.azure-devices.net", id, ""), sas.DeriveKey(groupKey, id), "", time.Now().Add(ttl))
}

func serviceTok(t *testing.T, h *Hub, policy string) string {
	p, ok := h.Policy(policy)
	if !ok {
		t.Fatal(policy)
	}
	return sas.Sign(h.HostName(), p.Keys[0], policy, time.Now().Add(time.Hour))
}

func errCode(t *testing.T, body []byte) string {
	t.Helper()
	e := iothub.ParseErrorBody(0, body)
	return string(e.Code)
}

func TestHTTPSDeviceAPI(t *testing.T) {
	for _, keepAlive := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			s := startServer(t, nil)
			h := s.Hub
			c := newREST(t, s, keepAlive)
			tok := devTok("dev1", time.Hour)
			events := "/devices/dev1/messages/events?api-version=2021-04-12"
			st, hd, body := c.do("POST", events, tok, map[string]string{"iothub-messageid": "h-1", "iothub-app-Alert": "yes", "iothub-contenttype": "application/json"}, []byte(`{"v":1}`))
			if st != 204 || hd.Get("iothub-errorcode") != "" {
				t.Fatalf("send: %d %s", st, body)
			}
			batch, _ := json.Marshal([]map[string]any{
				{"body": "YQ==", "properties": map[string]string{"iothub-app-n": "1"}},
				{"body": "plain text", "base64Encoded": false, "properties": map[string]string{"iothub-messageid": "b-2"}},
			})
			if st, _, body := c.do("POST", events, tok, map[string]string{"Content-Type": iothub.ContentTypeBatch}, batch); st != 204 {
				t.Fatalf("batch: %d %s", st, body)
			}
			msgs := h.Store().For(iothub.Identity{DeviceID: "dev1"})
			if len(msgs) != 3 || msgs[0].Message.MessageID != "h-1" || msgs[0].Protocol != HTTPS || string(msgs[1].Message.Body) != "a" || string(msgs[2].Message.Body) != "plain text" || msgs[2].Message.MessageID != "b-2" {
				t.Fatalf("stored %+v", msgs)
			}
			if v, _ := msgs[0].Message.Get("alert"); v != "yes" {
				t.Fatalf("application property: %+v", msgs[0].Message.Properties)
			}

			// C2D: poll empty, send, receive with ETag, abandon, receive again, reject.
			dev := "/devices/dev1/messages/devicebound"
			if st, _, _ := c.do("GET", dev+"?api-version=2021-04-12", tok, nil, nil); st != 204 {
				t.Fatalf("empty poll: %d", st)
			}
			if _, err := h.SendC2D("dev1", iothub.Message{Body: []byte("cmd"), MessageID: "c-1", Properties: []iothub.Property{{Name: "k", Value: "v"}}}, C2DOptions{Ack: "full"}); err != nil {
				t.Fatal(err)
			}
			st, hd, body = c.do("GET", dev+"?api-version=2021-04-12", tok, nil, nil)
			etag := strings.Trim(hd.Get("ETag"), `"`)
			if st != 200 || string(body) != "cmd" || hd.Get("iothub-messageid") != "c-1" || hd.Get("iothub-app-k") != "v" || hd.Get("iothub-ack") != "full" || len(etag) != 36 {
				t.Fatalf("receive: %d %q %v", st, body, hd)
			}
			if st, _, _ := c.do("POST", dev+"/"+etag+"/abandon?api-version=2021-04-12", tok, map[string]string{"If-Match": etag}, nil); st != 204 {
				t.Fatalf("abandon: %d", st)
			}
			st, hd, _ = c.do("GET", dev, tok, nil, nil)
			if st != 200 || hd.Get("iothub-deliverycount") != "1" {
				t.Fatalf("redelivery: %d %v", st, hd)
			}
			etag = strings.Trim(hd.Get("ETag"), `"`)
			if st, _, body := c.do("DELETE", dev+"/"+etag, tok, map[string]string{"If-Match": `"wrong"`}, nil); st != 412 || errCode(t, body) != "PreconditionFailed" {
				t.Fatalf("wrong If-Match: %d %s", st, body)
			}
			if st, _, _ := c.do("DELETE", dev+"/"+etag+"?api-version=2021-04-12&reject", tok, map[string]string{"If-Match": `"` + etag + `"`}, nil); st != 204 {
				t.Fatalf("reject: %d", st)
			}
			if st, _, body := c.do("DELETE", dev+"/"+etag, tok, nil, nil); st != 412 || errCode(t, body) != "DeviceMessageLockLost" {
				t.Fatalf("settling twice: %d %s", st, body)
			}
			if got := h.Stats().C2D; got["rejected"] != 1 || got["abandoned"] != 1 {
				t.Fatalf("C2D stats %v", got)
			}
		})
	}
}

func TestHTTPSDeviceErrors(t *testing.T) {
	s := startServer(t, nil)
	c := newREST(t, s, true)
	events := "/devices/dev1/messages/events"
	tests := []struct {
		name   string
		path   string
		auth   string
		hdr    map[string]string
		body   []byte
		status int
		code   string
	}{
		{"no auth", events, "", nil, []byte("x"), 401, "IotHubUnauthorizedAccess"},
		{"expired", events, devTok("dev1", -time.Minute), nil, []byte("x"), 401, "IotHubUnauthorizedAccess"},
		{"other device's token", events, devTok("dev2", time.Hour), nil, []byte("x"), 401, "IotHubUnauthorizedAccess"},
		{"too large", events, devTok("dev1", time.Hour), nil, make([]byte, iothub.MaxD2CSize+1), 413, "MessageTooLarge"},
		{"far too large", events, devTok("dev1", time.Hour), nil, make([]byte, maxHTTPBody+1), 413, "MessageTooLarge"},
		{"malformed batch", events, devTok("dev1", time.Hour), map[string]string{"Content-Type": iothub.ContentTypeBatch}, []byte(`[{"body":`), 400, "ArgumentInvalid"},
		{"batch body not base64", events, devTok("dev1", time.Hour), map[string]string{"Content-Type": iothub.ContentTypeBatch}, []byte(`[{"body":"***"}]`), 400, "ArgumentInvalid"},
		{"unknown device without group key match", "/devices/ghost/messages/events", sas.Sign("test.azure-devices.net/devices/ghost", []byte("k"), "", time.Now().Add(time.Hour)), nil, []byte("x"), 401, "IotHubUnauthorizedAccess"},
		{"bad expiry header", events, devTok("dev1", time.Hour), map[string]string{"iothub-expiry": "soon"}, []byte("x"), 400, "ArgumentInvalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, hd, body := c.do("POST", tt.path, tt.auth, tt.hdr, tt.body)
			if st != tt.status || errCode(t, body) != tt.code || hd.Get("iothub-errorcode") != tt.code {
				t.Fatalf("%d %s", st, body)
			}
		})
	}
	if n := s.Hub.Store().Len(); n != 0 {
		t.Fatalf("%d refused messages stored", n)
	}
}

func TestEventHubsREST(t *testing.T) {
	s := startServer(t, nil)
	c := newREST(t, s, true)
	h := s.Hub
	cs, err := h.EventHubsConnectionString("send", "telemetry")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := sas.Parse(cs)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := sas.TokenFor(parsed, time.Now().Add(time.Hour))
	if st, _, body := c.do("POST", "/telemetry/publishers/dev7/messages?timeout=60&api-version=2014-01", tok, map[string]string{"Content-Type": "application/atom+xml;type=entry;charset=utf-8"}, []byte("single")); st != 201 {
		t.Fatalf("single: %d %s", st, body)
	}
	batch := []byte(`[{"Body":"one","UserProperties":{"Alert":"Strong Wind"}},{"Body":"two"}]`)
	if st, _, body := c.do("POST", "/telemetry/messages", tok, map[string]string{"Content-Type": iothub.ContentTypeEventHubsBatch}, batch); st != 201 {
		t.Fatalf("batch: %d %s", st, body)
	}
	msgs := h.Store().Messages()
	if len(msgs) != 3 || msgs[0].Identity.DeviceID != "dev7" || msgs[0].Protocol != EventHubsHTTPS || string(msgs[1].Message.Body) != "one" {
		t.Fatalf("stored %+v", msgs)
	}
	if v, _ := msgs[1].Message.Get("Alert"); v != "Strong Wind" {
		t.Fatalf("user property %+v", msgs[1].Message.Properties)
	}
	// A namespace-scoped token works for any entity; a token for another entity
	// or namespace, or one without skn, does not.
	nsTok := sas.Sign("catmsim.servicebus.windows.net", mustKeyOf(t, parsed), "send", time.Now().Add(time.Hour))
	if st, _, _ := c.do("POST", "/other/messages", nsTok, nil, []byte("x")); st != 201 {
		t.Fatalf("namespace token: %d", st)
	}
	for name, bad := range map[string]string{
		"other entity":  sas.Sign("https://catmsim.servicebus.windows.net/other", mustKeyOf(t, parsed), "send", time.Now().Add(time.Hour)),
		"no skn":        sas.Sign("https://catmsim.servicebus.windows.net/telemetry", mustKeyOf(t, parsed), "", time.Now().Add(time.Hour)),
		"IoT Hub token": devTok("dev1", time.Hour),
	} {
		if st, _, body := c.do("POST", "/telemetry/messages", bad, nil, []byte("x")); st != 401 {
			t.Errorf("%s: %d %s", name, st, body)
		}
	}
}

func mustKeyOf(t *testing.T, c sas.ConnectionString) []byte {
	k, err := c.Key()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestServiceREST(t *testing.T) {
	s := startServer(t, nil)
	h := s.Hub
	c := newREST(t, s, true)
	owner := serviceTok(t, h, "iothubowner")
	// Create with empty keys: the hub generates them.
	st, hd, body := c.do("PUT", "/devices/new-1?api-version=2021-04-12", owner, map[string]string{"Content-Type": "application/json"},
		[]byte(`{"deviceId":"new-1","status":"enabled","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}}`))
	var d deviceJSON
	if st != 200 || json.Unmarshal(body, &d) != nil || d.Authentication.SymmetricKey.PrimaryKey == nil || len(*d.Authentication.SymmetricKey.PrimaryKey) != 44 || hd.Get("ETag") == "" {
		t.Fatalf("create: %d %s", st, body)
	}
	if st, _, body := c.do("PUT", "/devices/new-1", owner, nil, []byte(`{"deviceId":"new-1"}`)); st != 409 || errCode(t, body) != "DeviceAlreadyExists" {
		t.Fatalf("create twice: %d %s", st, body)
	}
	if st, _, body := c.do("GET", "/devices/nobody", owner, nil, nil); st != 404 || errCode(t, body) != "DeviceNotFound" {
		t.Fatalf("get unknown: %d %s", st, body)
	}
	// The generated key works for the device.
	key, _ := sas.DecodeKey(*d.Authentication.SymmetricKey.PrimaryKey)
	if st, _, body := c.do("POST", "/devices/new-1/messages/events", sas.Sign("test.azure-devices.net/devices/new-1", key, "", time.Now().Add(time.Hour)), nil, []byte("hi")); st != 204 {
		t.Fatalf("send with generated key: %d %s", st, body)
	}
	// Twin: patch desired with the etag, then a stale etag fails.
	st, hd, body = c.do("GET", "/twins/new-1", owner, nil, nil)
	if st != 200 {
		t.Fatalf("get twin: %d %s", st, body)
	}
	etag := hd.Get("ETag")
	if st, _, body := c.do("PATCH", "/twins/new-1", owner, map[string]string{"If-Match": etag}, []byte(`{"properties":{"desired":{"rate":5}}}`)); st != 200 || !strings.Contains(string(body), `"rate":5`) {
		t.Fatalf("patch twin: %d %s", st, body)
	}
	if st, _, body := c.do("PATCH", "/twins/new-1", owner, map[string]string{"If-Match": etag}, []byte(`{"tags":{"a":1}}`)); st != 412 {
		t.Fatalf("stale etag: %d %s", st, body)
	}
	// Methods: a device over MQTT answers; an offline device is 404; a silent
	// one 504.
	d1, err := dialDevice(t, s, iothub.Identity{DeviceID: "dev1"}, deviceOpts{})
	if err != nil {
		t.Fatal(err)
	}
	d1.sub(t, iothub.MethodsFilter)
	go func() {
		m := <-d1.msgs
		hp, _ := iothub.ParseHubPublish(m.Topic())
		d1.client.Publish(iothub.MethodResponseTopic(200, hp.RID), 0, false, `{"rebooted":true}`)
	}()
	st, _, body = c.do("POST", "/twins/dev1/methods?api-version=2021-04-12", owner, nil, []byte(`{"methodName":"reboot","responseTimeoutInSeconds":10,"payload":{"delay":0}}`))
	if st != 200 || string(body) != `{"status":200,"payload":{"rebooted":true}}` {
		t.Fatalf("invoke: %d %s", st, body)
	}
	if st, _, body := c.do("POST", "/twins/new-1/methods", owner, nil, []byte(`{"methodName":"reboot"}`)); st != 404 || errCode(t, body) != "DeviceNotOnline" {
		t.Fatalf("offline device: %d %s", st, body)
	}
	if st, _, body := c.do("POST", "/twins/dev1/methods", owner, nil, []byte(`{"methodName":"reboot","responseTimeoutInSeconds":1}`)); st != 400 {
		t.Fatalf("timeout below 5 s: %d %s", st, body)
	}
	// Rights: the "service" policy may invoke but not read the registry; the
	// "registryRead" policy may read but not write.
	if st, _, _ := c.do("GET", "/devices/new-1", serviceTok(t, h, "service"), nil, nil); st != 401 {
		t.Fatalf("service policy read the registry: %d", st)
	}
	if st, _, _ := c.do("DELETE", "/devices/new-1", serviceTok(t, h, "registryRead"), map[string]string{"If-Match": "*"}, nil); st != 401 {
		t.Fatalf("registryRead deleted a device: %d", st)
	}
	st, _, body = c.do("GET", "/statistics/devices", owner, nil, nil)
	if st != 200 || !strings.Contains(string(body), `"totalDeviceCount":2`) {
		t.Fatalf("statistics: %d %s", st, body)
	}
	if st, _, _ := c.do("DELETE", "/devices/new-1", owner, map[string]string{"If-Match": "*"}, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st, _, _ := c.do("GET", "/devices/new-1", owner, nil, nil); st != 404 {
		t.Fatalf("deleted device still there: %d", st)
	}
}
