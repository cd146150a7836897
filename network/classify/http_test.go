package classify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/network"
)

const hubHost = "hub.azure-devices.net"

// httpReq builds a request with a Host header, the given header lines and a
// Content-Length body (when body is not empty).
func httpReq(method, target string, body string, headers ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, hubHost)
	b.WriteString("Authorization: SharedAccessSignature sr=hub.azure-devices.net%2Fdevices%2Fd1&sig=x&se=1\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

func httpResp(code int, body string, headers ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d Reason\r\nDate: Sat, 22 Nov 2025 02:00:00 GMT\r\n", code)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return []byte(b.String())
}

func chunked(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "%x;ext=1\r\n%s\r\n", len(p), p)
	}
	b.WriteString("0\r\nX-Trailer: t\r\n\r\n")
	return b.String()
}

func newHTTPPender(rules ...Rule) func() pender {
	return func() pender { return NewHTTP(rules...) }
}

func TestHTTP(t *testing.T) {
	const api = "?api-version=2021-04-12"
	tele := httpReq("POST", "/devices/d1/messages/events"+api, `{"t":21.5}`,
		"iothub-app-alert: true", "Content-Type: application/json")
	noContent := httpResp(204, "")
	poll := httpReq("GET", "/devices/d1/messages/deviceBound"+api, "")
	c2dMsg := httpResp(200, "led=on", `ETag: "5f1c"`, "iothub-messageid: 9", "Content-Length: 6")
	empty := httpResp(204, "")
	complete := httpReq("DELETE", "/devices/d1/messages/devicebound/5f1c"+api, "", `If-Match: "5f1c"`)
	reject := httpReq("DELETE", "/devices/d1/messages/devicebound/5f1c"+api+"&reject", "")
	abandon := httpReq("POST", "/devices/d1/messages/devicebound/5f1c/abandon"+api, "")
	chunkedTele := httpReq("POST", "/devices/d1/messages/events"+api, "", "Transfer-Encoding: chunked")
	chunkedTele = append(chunkedTele, chunked(`{"t":1}`, strings.Repeat("x", 300))...)
	chunkedResp := append(httpResp(200, "", "Transfer-Encoding: gzip, chunked"), chunked("abc", "defgh")...)
	twinGet := httpReq("GET", "/twins/d1"+api, "")
	twinPatch := httpReq("PATCH", "/twins/d1"+api, `{"properties":{"desired":{"rate":5}}}`, `If-Match: "*"`)
	invoke := httpReq("POST", "/twins/d1/methods"+api, `{"methodName":"reboot"}`)
	invokeMod := httpReq("POST", "/twins/d1/modules/m1/methods/"+api, `{"methodName":"reboot"}`)
	methodResp := httpResp(200, `{"status":200,"payload":null}`, "Content-Length: 29")
	twinResp := httpResp(200, `{"deviceId":"d1"}`, "Content-Length: 17")
	eh := httpReq("POST", "/telemetry-hub/messages?timeout=60&api-version=2014-01", "21.5")
	ehPub := httpReq("POST", "https://ns.servicebus.windows.net/hub/publishers/dev1/messages", "21.5")
	ehPart := httpReq("POST", "/hub/Partitions/0/Messages", "21.5")
	created := httpResp(201, "")
	registry := httpReq("GET", "/devices/d1"+api, "")
	files := httpReq("POST", "/devices/d1/files"+api, `{"blobName":"a"}`)
	getEvents := httpReq("GET", "/devices/d1/messages/events"+api, "")
	ok0 := httpResp(200, "", "Content-Length: 0")
	head := httpReq("HEAD", "/devices/d1/messages/events", "")
	headResp := httpResp(200, "", "Content-Length: 1234")
	cont := httpResp(100, "")
	expect := httpReq("POST", "/devices/d1/messages/events", "body", "Expect: 100-continue")
	notModified := httpResp(304, "", "Content-Length: 99")
	untilClose := httpResp(200, "streamed until the connection closes")
	longTele := httpReq("POST", "/devices/d1/messages/events?x="+strings.Repeat("q", 3000), "t")
	garbage := []byte("\x16\x03\x01\x02\x00 not http\r\n\r\n")
	badLen := httpReq("POST", "/devices/d1/messages/events", "", "Content-Length: 12x")
	ruleReq := httpReq("POST", "/measures/dev7?fmt=json", "21.5")
	ruleGet := httpReq("GET", "/measures/dev7", "")
	upgrade := httpReq("GET", "/$iothub/websocket", "", "Upgrade: websocket", "Connection: Upgrade")
	switching := httpResp(101, "", "Upgrade: websocket")
	tunnelUp, tunnelDown := []byte{0x82, 0x81, 1, 2, 3, 4, 5}, []byte{0x82, 0x02, 0x20, 0x02}

	tests := []struct {
		name  string
		rules []Rule
		segs  []seg
		want  want
	}{
		{
			name: "iothub device rest",
			segs: []seg{
				up(tele), down(noContent), up(poll), down(c2dMsg), up(complete), down(noContent),
				up(poll), down(empty), up(reject), down(noContent), up(abandon), down(noContent),
			},
			want: want{
				network.Up: {network.ClassTelemetry: len(tele), network.ClassC2D: sum(poll, complete, poll, reject, abandon)},
				network.Down: {network.ClassTelemetry: len(noContent),
					network.ClassC2D: sum(c2dMsg, noContent, empty, noContent, noContent)},
			},
		},
		{
			name: "chunked bodies",
			segs: []seg{up(chunkedTele), down(chunkedResp), up(tele), down(noContent)},
			want: want{
				network.Up:   {network.ClassTelemetry: sum(chunkedTele, tele)},
				network.Down: {network.ClassTelemetry: sum(chunkedResp, noContent)},
			},
		},
		{
			name: "service rest and event hubs",
			segs: []seg{
				up(twinGet), down(twinResp), up(twinPatch), down(twinResp), up(invoke), down(methodResp),
				up(invokeMod), down(methodResp), up(eh), down(created), up(ehPub), down(created), up(ehPart), down(created),
			},
			want: want{
				network.Up: {
					network.ClassTwin: sum(twinGet, twinPatch), network.ClassMethod: sum(invoke, invokeMod),
					network.ClassTelemetry: sum(eh, ehPub, ehPart),
				},
				network.Down: {
					network.ClassTwin: 2 * len(twinResp), network.ClassMethod: 2 * len(methodResp),
					network.ClassTelemetry: 3 * len(created),
				},
			},
		},
		{
			name: "other paths",
			segs: []seg{up(registry), down(ok0), up(files), down(ok0), up(getEvents), down(ok0)},
			want: want{
				network.Up:   {network.ClassOther: sum(registry, files, getEvents)},
				network.Down: {network.ClassOther: 3 * len(ok0)},
			},
		},
		{
			name: "pipelined requests and bodiless responses",
			segs: []seg{up(head, expect, poll, tele), down(headResp, cont, noContent, c2dMsg, notModified)},
			want: want{
				network.Up: {network.ClassOther: len(head), network.ClassTelemetry: sum(expect, tele),
					network.ClassC2D: len(poll)},
				network.Down: {network.ClassOther: len(headResp), network.ClassTelemetry: sum(cont, noContent, notModified),
					network.ClassC2D: len(c2dMsg)},
			},
		},
		{
			name: "response without a request, then a body until close",
			segs: []seg{down(ok0), up(poll), down(untilClose), down([]byte("more of the same body"))},
			want: want{
				network.Up:   {network.ClassC2D: len(poll)},
				network.Down: {network.ClassOther: len(ok0), network.ClassC2D: len(untilClose) + 21},
			},
		},
		{
			name: "request line longer than the line buffer",
			segs: []seg{up(longTele), down(noContent)},
			want: want{
				network.Up:   {network.ClassTelemetry: len(longTele)},
				network.Down: {network.ClassTelemetry: len(noContent)},
			},
		},
		{
			name: "not http",
			segs: []seg{up(garbage), up(tele)},
			want: want{network.Up: {network.ClassOther: sum(garbage, tele)}},
		},
		{
			name: "first line longer than the line buffer without a space",
			segs: []seg{up([]byte(strings.Repeat("U", 3000) + "\r\n\r\n")), up(tele)},
			want: want{network.Up: {network.ClassOther: 3004 + len(tele)}},
		},
		{
			name: "malformed content length loses the stream",
			segs: []seg{up(badLen), up(tele)},
			want: want{network.Up: {network.ClassTelemetry: len(badLen), network.ClassOther: len(tele)}},
		},
		{
			name:  "rules",
			rules: []Rule{{Pattern: "/measures/+", Class: network.ClassTelemetry, Method: "post"}},
			segs:  []seg{up(ruleReq), down(noContent), up(ruleGet), down(ok0)},
			want: want{
				network.Up:   {network.ClassTelemetry: len(ruleReq), network.ClassOther: len(ruleGet)},
				network.Down: {network.ClassTelemetry: len(noContent), network.ClassOther: len(ok0)},
			},
		},
		{
			name: "upgrade ends http",
			segs: []seg{up(upgrade), down(switching), up(tunnelUp), down(tunnelDown)},
			want: want{
				network.Up:   {network.ClassOther: sum(upgrade, tunnelUp)},
				network.Down: {network.ClassOther: sum(switching, tunnelDown)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkSplits(t, newHTTPPender(tc.rules...), tc.segs, tc.want)
		})
	}
}

func TestRESTClass(t *testing.T) {
	tests := []struct {
		method, target string
		want           network.Class
	}{
		{"POST", "/devices/d1/messages/events?api-version=2021-04-12", network.ClassTelemetry},
		{"POST", "/devices/d1/messages/events/", network.ClassTelemetry},
		{"POST", "/devices/d%2F1/modules/m1/messages/events", network.ClassTelemetry},
		{"PUT", "/devices/d1/messages/events", network.ClassOther},
		{"GET", "/DEVICES/d1/MESSAGES/DEVICEBOUND", network.ClassC2D},
		{"DELETE", "/devices/d1/messages/devicebound/tok?reject", network.ClassC2D},
		{"GET", "/twins/d1/modules/m1", network.ClassTwin},
		{"POST", "/twins/d1/methods", network.ClassMethod},
		{"POST", "/devices/messages", network.ClassTelemetry}, // an event hub named "devices"
		{"GET", "/hub/messages", network.ClassOther},
		{"POST", "/hub/partitions/0/messages/x", network.ClassOther},
		{"POST", "http://ns.servicebus.windows.net", network.ClassOther},
		{"POST", "HTTPS://ns.servicebus.windows.net/hub/messages", network.ClassTelemetry},
		{"OPTIONS", "*", network.ClassOther},
		{"POST", "/a/b/c/d/e/f/g/h", network.ClassOther},
	}
	h := NewHTTP()
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			if got := h.requestClass([]byte(tc.method), []byte(tc.target)); got != tc.want {
				t.Fatalf("class = %s, want %s", got, tc.want)
			}
		})
	}
}
