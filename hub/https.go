package hub

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

// maxHTTPBody bounds a request body the emulator reads. IoT Hub's limits are on
// messages (256 KB, a batch included) and are checked with their own error; a
// batch's JSON and base64 make its body larger than its messages.
const maxHTTPBody = 1 << 20

// maxEventHubsBody is the Event Hubs Standard tier's limit on one send.
const maxEventHubsBody = 1 << 20

// routeHTTP serves everything on the HTTPS port: WebSockets, the device and
// service REST APIs, and the Event Hubs REST endpoint.
func (s *Server) routeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := pathSegments(r.URL.EscapedPath())
	switch {
	case r.URL.Path == WebSocketPath:
		s.serveWebSocket(w, r)
	case len(segs) >= 3 && strings.EqualFold(segs[0], "devices") && strings.EqualFold(segs[2], "messages"),
		len(segs) >= 5 && strings.EqualFold(segs[0], "devices") && strings.EqualFold(segs[2], "modules") && strings.EqualFold(segs[4], "messages"):
		s.serveDeviceREST(w, r, segs)
	case len(segs) >= 1 && (segs[0] == "devices" || segs[0] == "twins" || segs[0] == "statistics"):
		s.serveServiceREST(w, r, segs)
	case len(segs) >= 2 && strings.EqualFold(segs[len(segs)-1], "messages"):
		s.serveEventHubs(w, r, segs)
	default:
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "%s %s is not an IoT Hub or Event Hubs endpoint", r.Method, r.URL.Path))
	}
}

// pathSegments splits an escaped path and unescapes each segment, so that an
// id holding an escaped '/' or '%' stays one segment.
func pathSegments(p string) []string {
	var out []string
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if s == "" {
			continue
		}
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		out = append(out, s)
	}
	return out
}

// writeError answers with IoT Hub's status and JSON error body.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *iothub.Error
	var ae *AuthError
	switch {
	case errors.As(err, &ae):
		e = iothub.Errorf(iothub.CodeUnauthorized, "%v", ae.Err)
	case errors.As(err, &e):
	default:
		e = iothub.Errorf(iothub.CodeServerError, "%v", err)
	}
	w.Header()["Content-Type"] = []string{"application/json; charset=utf-8"}
	w.Header()[iothub.HeaderErrorCode] = []string{string(e.Code)}
	w.WriteHeader(e.Code.HTTPStatus())
	_, _ = w.Write(iothub.ErrorBody(e, trackingID(), s.Hub.now()))
}

func trackingID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// authDevice authenticates a device REST request by its Authorization header
// (a SAS token) or its TLS client certificate.
func (s *Server) authDevice(r *http.Request, id iothub.Identity) (*Principal, error) {
	c := Credentials{Token: strings.TrimSpace(r.Header.Get("Authorization"))}
	if c.Token == "" && r.TLS != nil {
		c.Certs = peerCerts(*r.TLS)
	}
	return s.Hub.Authenticate(id, c)
}

// serveDeviceREST serves /devices/{id}[/modules/{mid}]/messages/…: sending
// events (one or a batch) and the cloud-to-device receive, complete, reject and
// abandon calls (spec §4.1).
func (s *Server) serveDeviceREST(w http.ResponseWriter, r *http.Request, segs []string) {
	id := iothub.Identity{DeviceID: segs[1]}
	rest := segs[3:]
	if strings.EqualFold(segs[2], "modules") {
		id.ModuleID = segs[3]
		rest = segs[5:]
	}
	p, err := s.authDevice(r, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case len(rest) == 1 && strings.EqualFold(rest[0], "events") && r.Method == http.MethodPost:
		s.postEvents(w, r, p)
	case id.ModuleID == "" && len(rest) >= 1 && strings.EqualFold(rest[0], "devicebound"):
		s.serveDeviceBound(w, r, p, rest[1:])
	default:
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "%s %s is not a device API", r.Method, r.URL.Path))
	}
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, p *Principal) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHTTPBody))
	if err != nil {
		s.writeError(w, r, iothub.Errorf(iothub.CodeMessageTooLarge, "request body larger than %d bytes", maxHTTPBody))
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var msgs []*iothub.Message
	if ct == iothub.ContentTypeBatch {
		msgs, err = decodeBatch(body)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		total := 0
		for _, m := range msgs {
			total += m.Size()
		}
		if total > iothub.MaxD2CSize {
			err := iothub.Errorf(iothub.CodeMessageTooLarge, "batch of %d messages totals %d bytes; IoT Hub's limit is %d", len(msgs), total, iothub.MaxD2CSize)
			s.Hub.reject(p.Identity, HTTPS, err)
			s.writeError(w, r, err)
			return
		}
	} else {
		m := &iothub.Message{Body: body}
		if err := messageFromHeaders(r.Header, m); err != nil {
			s.writeError(w, r, err)
			return
		}
		msgs = []*iothub.Message{m}
	}
	for _, m := range msgs {
		if err := s.Hub.Accept(p, HTTPS, m); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// messageFromHeaders reads system properties from iothub-* headers and
// application properties from iothub-app-* headers. HTTP header names are
// case-insensitive, so application property names arrive in whatever case a
// proxy leaves them; the emulator records them in lower case.
func messageFromHeaders(h http.Header, m *iothub.Message) error {
	for _, f := range iothub.HeaderFields {
		if v := h.Get(f.Header); v != "" {
			if err := f.Set(m, v); err != nil {
				return iothub.Errorf(iothub.CodeArgumentInvalid, "header %s: %v", f.Header, err)
			}
		}
	}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if name, ok := strings.CutPrefix(lk, iothub.HeaderAppPrefix); ok && name != "" && len(vs) > 0 {
			m.Properties = append(m.Properties, iothub.Property{Name: name, Value: vs[0]})
		}
	}
	return nil
}

// decodeBatch reads application/vnd.microsoft.iothub.json: an array of
// {"body": …, "base64Encoded": true|false, "properties": {…}}. base64Encoded
// defaults to true (the .NET and Node SDKs omit it).
func decodeBatch(body []byte) ([]*iothub.Message, error) {
	var items []struct {
		Body          *string           `json:"body"`
		Base64Encoded *bool             `json:"base64Encoded"`
		Properties    map[string]string `json:"properties"`
	}
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, iothub.Errorf(iothub.CodeArgumentInvalid, "batch body is not a JSON array of messages: %v", err)
	}
	if len(items) == 0 {
		return nil, iothub.Errorf(iothub.CodeArgumentInvalid, "batch holds no messages")
	}
	out := make([]*iothub.Message, 0, len(items))
	for i, it := range items {
		if it.Body == nil {
			return nil, iothub.Errorf(iothub.CodeArgumentInvalid, "batch message %d has no body", i)
		}
		m := &iothub.Message{Body: []byte(*it.Body)}
		if it.Base64Encoded == nil || *it.Base64Encoded {
			b, err := base64.StdEncoding.DecodeString(*it.Body)
			if err != nil {
				return nil, iothub.Errorf(iothub.CodeArgumentInvalid, "batch message %d: body is not base64 (set \"base64Encoded\": false for text)", i)
			}
			m.Body = b
		}
		h := http.Header{}
		for k, v := range it.Properties {
			h.Set(k, v)
		}
		if err := messageFromHeaders(h, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// serveDeviceBound is the cloud-to-device API: GET receives (200 with the message
// and its lock token as ETag, or 204), DELETE completes (or with ?reject
// rejects), POST …/abandon abandons.
func (s *Server) serveDeviceBound(w http.ResponseWriter, r *http.Request, p *Principal, rest []string) {
	dev := p.Identity.DeviceID
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		lock := time.Duration(0)
		if v := r.URL.Query().Get("iothub-messagelocktimeout"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 5 || n > 300 {
				s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "iothub-messagelocktimeout must be 5 to 300 seconds (got %q)", v))
				return
			}
			lock = time.Duration(n) * time.Second
		}
		m, err := s.Hub.ReceiveC2D(dev, lock)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if m == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		hd := w.Header()
		hd["ETag"] = []string{`"` + m.LockToken + `"`}
		for _, f := range iothub.HeaderFields {
			if v := f.Get(&m.Message); v != "" {
				hd[f.Header] = []string{v}
			}
		}
		hd[iothub.HeaderSequenceNumber] = []string{strconv.FormatUint(m.SequenceNumber, 10)}
		hd[iothub.HeaderEnqueuedTime] = []string{iothub.FormatTime(m.Enqueued)}
		hd[iothub.HeaderDeliveryCount] = []string{strconv.Itoa(m.DeliveryCount)}
		hd[iothub.HeaderAck] = []string{m.Ack}
		hd[iothub.HeaderExpiry] = []string{iothub.FormatTime(m.Expires)}
		for _, prop := range m.Properties {
			hd[iothub.HeaderAppPrefix+prop.Name] = []string{prop.Value}
		}
		if m.ContentType != "" {
			hd["Content-Type"] = []string{m.ContentType}
		}
		hd["Content-Length"] = []string{strconv.Itoa(len(m.Body))}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(m.Body)
	case len(rest) == 1 && r.Method == http.MethodDelete:
		o := Complete
		if _, ok := r.URL.Query()["reject"]; ok {
			o = Reject
		}
		s.settleHTTP(w, r, dev, rest[0], o)
	case len(rest) == 2 && strings.EqualFold(rest[1], "abandon") && r.Method == http.MethodPost:
		s.settleHTTP(w, r, dev, rest[0], Abandon)
	default:
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "%s %s is not a cloud-to-device API", r.Method, r.URL.Path))
	}
}

// settleHTTP settles by the lock token in the path. If-Match arrives quoted (C,
// .NET) or not (Node); when present it must name the same lock.
func (s *Server) settleHTTP(w http.ResponseWriter, r *http.Request, dev, lock string, o C2DOutcome) {
	lock = strings.Trim(lock, `"`)
	if m := strings.Trim(r.Header.Get("If-Match"), `"`); m != "" && m != "*" && m != lock {
		s.writeError(w, r, iothub.Errorf(iothub.CodePreconditionFailed, "If-Match %q does not name lock token %q", m, lock))
		return
	}
	if err := s.Hub.SettleC2D(dev, lock, o); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveEventHubs is the Event Hubs REST send endpoint (spec §4.2):
// POST /{hub}/messages, /{hub}/publishers/{publisher}/messages and
// /{hub}/partitions/{partition}/messages, single or batched, authorized by an
// Event Hubs SAS token (skn always present). A publisher id names the device in
// the store.
func (s *Server) serveEventHubs(w http.ResponseWriter, r *http.Request, segs []string) {
	if r.Method != http.MethodPost {
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "Event Hubs REST takes POST, not %s", r.Method))
		return
	}
	entity := segs[0]
	var publisher string
	switch {
	case len(segs) == 2:
	case len(segs) == 4 && strings.EqualFold(segs[1], "publishers"):
		publisher = segs[2]
	case len(segs) == 4 && strings.EqualFold(segs[1], "partitions"):
	default:
		s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "%s is not an Event Hubs send path", r.URL.Path))
		return
	}
	p, err := s.Hub.AuthenticateEventHubs(r.Header.Get("Authorization"), entity)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p.Identity = iothub.Identity{DeviceID: publisher}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventHubsBody))
	if err != nil {
		s.writeError(w, r, iothub.Errorf(iothub.CodeRequestEntityTooLarge, "Event Hubs accepts at most %d bytes per send", maxEventHubsBody))
		return
	}
	var msgs []*iothub.Message
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == iothub.ContentTypeEventHubsBatch {
		var items []struct {
			Body           *string           `json:"Body"`
			UserProperties map[string]any    `json:"UserProperties"`
			Broker         map[string]string `json:"BrokerProperties"`
		}
		if err := json.Unmarshal(body, &items); err != nil || len(items) == 0 {
			s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "Event Hubs batch must be a non-empty JSON array of {\"Body\": …, \"UserProperties\": {…}}"))
			return
		}
		for i, it := range items {
			if it.Body == nil {
				s.writeError(w, r, iothub.Errorf(iothub.CodeArgumentInvalid, "Event Hubs batch message %d has no Body", i))
				return
			}
			m := &iothub.Message{Body: []byte(*it.Body)}
			for k, v := range it.UserProperties {
				m.Properties = append(m.Properties, iothub.Property{Name: k, Value: fmt.Sprint(v)})
			}
			if id, ok := it.Broker["MessageId"]; ok {
				m.MessageID = id
			}
			msgs = append(msgs, m)
		}
	} else {
		m := &iothub.Message{Body: body, ContentType: r.Header.Get("Content-Type")}
		msgs = append(msgs, m)
	}
	for _, m := range msgs {
		if err := s.Hub.Accept(p, EventHubsHTTPS, m); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusCreated)
}
