package hub

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"
	"github.com/coder/websocket"

	"github.com/catmsim/catmsim/internal/iothub"
)

func dialAMQPWebSocket(ctx context.Context, s *Server, tc *tls.Config) (net.Conn, error) {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	ws, _, err := websocket.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d%s", s.HTTPSPort(), WebSocketPath), &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{SubprotocolAMQP}})
	if err != nil {
		return nil, err
	}
	if ws.Subprotocol() != SubprotocolAMQP {
		return nil, fmt.Errorf("the emulator chose subprotocol %q", ws.Subprotocol())
	}
	ws.SetReadLimit(-1)
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}

// TestAMQPDeviceLinks runs every device link over TLS and over WebSockets:
// CBS, telemetry (single and batch), C2D with each outcome, a direct method
// and the twin, checking what the hub recorded after each.
func TestAMQPDeviceLinks(t *testing.T) {
	for _, ws := range []bool{false, true} {
		t.Run(map[bool]string{false: "tls", true: "websocket"}[ws], func(t *testing.T) {
			s := startServer(t, nil)
			h := s.Hub
			proto := map[bool]Protocol{false: AMQP, true: AMQPWebSocket}[ws]
			id := iothub.Identity{DeviceID: "dev1"}
			c := mustDialAMQP(t, s, amqpDialOpts{ws: ws})
			sess := newSession(t, c)
			cbs := newCBS(t, sess)

			// put-token: the answer's correlation-id is the request's
			// message-id in the same AMQP type.
			for _, msgID := range []any{"req-1", uint64(7), amqp.UUID{1, 2, 3}} {
				r := cbs.put(t, deviceName(id), devTok("dev1", time.Hour), msgID)
				if r.status != 200 || r.corr != msgID {
					t.Fatalf("put-token with message-id %T %v: status %d %q, correlation-id %T %v", msgID, msgID, r.status, r.desc, r.corr, r.corr)
				}
			}
			if h.Connected(id) {
				t.Fatal("a put-token alone connected the device; its first link should")
			}

			// Telemetry with properties, application properties and
			// annotations, then a batch of two.
			ctx := within(t)
			snd, err := sess.NewSender(ctx, "/devices/dev1/messages/events", nil)
			if err != nil {
				t.Fatal(err)
			}
			msg := &amqp.Message{
				Properties: &amqp.MessageProperties{MessageID: amqp.UUID{0xaa, 0xbb}, CorrelationID: uint64(42), ContentType: ptr("application/json"),
					ContentEncoding: ptr("utf-8"), UserID: []byte("user-1"), To: ptr("/devices/dev1/messages/events")},
				ApplicationProperties: map[string]any{"alert": "a/b c", "level": int32(3), iothub.AMQPPropCreationTime: "2024-01-02T03:04:05Z"},
				Annotations:           amqp.Annotations{"iothub-interface-id": "dtmi:x;1", "x-opt-custom": int64(9)},
				Data:                  [][]byte{[]byte(`{"t":`), []byte(`21.5}`)},
			}
			if err := snd.Send(ctx, msg, nil); err != nil {
				t.Fatalf("telemetry: %v", err)
			}
			got := h.Store().For(id)
			if len(got) != 1 {
				t.Fatalf("stored %d messages, want 1 once the send was accepted", len(got))
			}
			m := got[0].Message
			if got[0].Protocol != proto || m.MessageID != "aabb0000-0000-0000-0000-000000000000" || m.CorrelationID != "42" || m.ContentType != "application/json" ||
				m.ContentEncoding != "utf-8" || m.UserID != "user-1" || string(m.Body) != `{"t":21.5}` || m.InterfaceID != "dtmi:x;1" ||
				m.CreationTime != time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) {
				t.Fatalf("stored %+v over %s", m, got[0].Protocol)
			}
			if v, _ := m.Get("alert"); v != "a/b c" {
				t.Errorf("application property alert = %q", v)
			}
			if v, _ := m.Get("level"); v != "3" {
				t.Errorf("application property level = %q, want the int as text", v)
			}
			if len(m.Annotations) != 1 || m.Annotations[0] != (iothub.Property{Name: "x-opt-custom", Value: "9"}) {
				t.Errorf("annotations %+v", m.Annotations)
			}
			if got[0].System[iothub.PropConnectionDeviceID] != "dev1" {
				t.Errorf("hub stamps %v", got[0].System)
			}
			batch := encodeBatch(t, &amqp.Message{Data: [][]byte{[]byte("b1")}, Properties: &amqp.MessageProperties{MessageID: "m-b1"}},
				&amqp.Message{Data: [][]byte{[]byte("b2")}, ApplicationProperties: map[string]any{"k": "v"}})
			if err := snd.Send(ctx, batch, nil); err != nil {
				t.Fatalf("batch: %v", err)
			}
			got = h.Store().For(id)
			if len(got) != 3 || string(got[1].Message.Body) != "b1" || got[1].Message.MessageID != "m-b1" || string(got[2].Message.Body) != "b2" {
				t.Fatalf("after the batch the store holds %d messages: %+v", len(got), got)
			}

			// C2D: each outcome reaches the hub; the tag is the lock token.
			rcv, err := sess.NewReceiver(ctx, "/devices/dev1/messages/deviceBound", &amqp.ReceiverOptions{Credit: 5})
			if err != nil {
				t.Fatal(err)
			}
			for i, settle := range []struct {
				name  string
				do    func(*amqp.Message) error
				stat  func() uint64
				ack   string
				extra func(*amqp.Message)
			}{
				{"complete", func(m *amqp.Message) error { return rcv.AcceptMessage(ctx, m) }, h.stats.C2DCompleted.Load, "full", nil},
				{"reject", func(m *amqp.Message) error { return rcv.RejectMessage(ctx, m, nil) }, h.stats.C2DRejected.Load, "", nil},
				{"abandon", func(m *amqp.Message) error { return rcv.ReleaseMessage(ctx, m) }, h.stats.C2DAbandoned.Load, "", nil},
			} {
				before := settle.stat()
				sent, err := h.SendC2D("dev1", iothub.Message{Body: []byte("c2d-" + settle.name), MessageID: "c-" + settle.name, CorrelationID: "corr",
					Properties: []iothub.Property{{Name: "k", Value: "v/w"}}}, C2DOptions{Ack: settle.ack})
				if err != nil {
					t.Fatal(err)
				}
				m := receive(t, rcv)
				if string(m.GetData()) != "c2d-"+settle.name || m.Properties.MessageID != "c-"+settle.name || *m.Properties.To != "/devices/dev1/messages/deviceBound" ||
					m.ApplicationProperties["k"] != "v/w" {
					t.Fatalf("%s: C2D message %+v %+v", settle.name, m.Properties, m.ApplicationProperties)
				}
				if !bytes.Equal(m.DeliveryTag, uuidBytes(t, sent.LockToken)) || m.Annotations[iothub.AnnotationLockToken] != amqp.UUID(uuidBytes(t, sent.LockToken)) {
					t.Fatalf("%s: delivery tag % x, lock-token annotation %v; want the lock token %s", settle.name, m.DeliveryTag, m.Annotations[iothub.AnnotationLockToken], sent.LockToken)
				}
				if settle.ack == "full" && m.ApplicationProperties[iothub.PropAck] != "full" {
					t.Fatalf("iothub-ack %v", m.ApplicationProperties[iothub.PropAck])
				}
				if _, ok := m.Annotations[iothub.AnnotationSequenceNumber].(uint64); !ok {
					t.Fatalf("sequence number annotation %T", m.Annotations[iothub.AnnotationSequenceNumber])
				}
				if err := settle.do(m); err != nil {
					t.Fatalf("%s: %v", settle.name, err)
				}
				waitFor(t, h, func() bool { return settle.stat() == before+1 })
				if i == 2 {
					// The abandoned message comes back with its delivery count.
					again := receive(t, rcv)
					if again.Annotations[iothub.AnnotationDeliveryCount] != uint8(1) {
						t.Fatalf("redelivery count %v", again.Annotations[iothub.AnnotationDeliveryCount])
					}
					if err := rcv.AcceptMessage(ctx, again); err != nil {
						t.Fatal(err)
					}
				}
			}
			waitFor(t, h, func() bool { return h.C2DPending("dev1") == 0 })
			if fb := h.TakeFeedback(0); len(fb) != 1 || fb[0].OriginalMessageID != "c-complete" || fb[0].StatusCode != "Success" {
				t.Fatalf("feedback %+v", fb)
			}

			// A direct method: a uuid correlation-id that the answer echoes.
			mSnd, err := sess.NewSender(ctx, "/devices/dev1/methods/devicebound", &amqp.SenderOptions{SettlementMode: ptr(amqp.SenderSettleModeSettled)})
			if err != nil {
				t.Fatal(err)
			}
			mRcv, err := sess.NewReceiver(ctx, "/devices/dev1/methods/devicebound", &amqp.ReceiverOptions{Credit: 10, RequestedSenderSettleMode: ptr(amqp.SenderSettleModeSettled)})
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				r   MethodResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := h.InvokeMethod(context.Background(), id, "reboot", []byte(`{"in":1}`), 10*time.Second, 5*time.Second)
				done <- result{r, err}
			}()
			req := receive(t, mRcv)
			corr, ok := req.Properties.CorrelationID.(amqp.UUID)
			if !ok || req.ApplicationProperties[iothub.AMQPPropMethodName] != "reboot" || string(req.GetData()) != `{"in":1}` {
				t.Fatalf("method request: correlation-id %T, properties %v, body %q", req.Properties.CorrelationID, req.ApplicationProperties, req.GetData())
			}
			if err := mSnd.Send(ctx, &amqp.Message{Properties: &amqp.MessageProperties{CorrelationID: corr},
				ApplicationProperties: map[string]any{iothub.AMQPPropMethodStatus: int32(201)}, Data: [][]byte{[]byte(`{"out":2}`)}}, nil); err != nil {
				t.Fatal(err)
			}
			res := <-done
			if res.err != nil || res.r.Status != 201 || string(res.r.Payload) != `{"out":2}` {
				t.Fatalf("method result %+v %v", res.r, res.err)
			}

			// Twin: GET, PATCH reported, PUT for desired updates, an update, DELETE.
			props := map[string]any{iothub.LinkPropChannelCorrelationID: "twin:abc", iothub.LinkPropAPIVersion: iothub.APIVersion}
			tSnd, err := sess.NewSender(ctx, "/devices/dev1/twin", &amqp.SenderOptions{Properties: props, SettlementMode: ptr(amqp.SenderSettleModeSettled)})
			if err != nil {
				t.Fatal(err)
			}
			tRcv, err := sess.NewReceiver(ctx, "/devices/dev1/twin", &amqp.ReceiverOptions{Properties: props, Credit: 10})
			if err != nil {
				t.Fatal(err)
			}
			twin := func(op, resource string, corr any, body string) *amqp.Message {
				t.Helper()
				ann := amqp.Annotations{iothub.AnnotationOperation: op}
				if resource != "" {
					ann[iothub.AnnotationResource] = resource
				}
				if err := tSnd.Send(ctx, &amqp.Message{Annotations: ann, Properties: &amqp.MessageProperties{CorrelationID: corr}, Data: [][]byte{[]byte(body)}}, nil); err != nil {
					t.Fatal(err)
				}
				r := receive(t, tRcv)
				if r.Properties == nil || r.Properties.CorrelationID != corr {
					t.Fatalf("%s answer correlation-id %v, want %T %v", op, r.Properties, corr, corr)
				}
				if _, ok := r.Annotations[iothub.AnnotationStatus].(int32); !ok {
					t.Fatalf("%s answer status %T, want an AMQP int", op, r.Annotations[iothub.AnnotationStatus])
				}
				return r
			}
			r := twin(iothub.TwinOpGet, "", "get-1", " ")
			if r.Annotations[iothub.AnnotationStatus] != int32(200) || string(r.GetData()) != `{"desired":{"$version":1},"reported":{"$version":1}}` {
				t.Fatalf("GET: %v %s", r.Annotations, r.GetData())
			}
			r = twin(iothub.TwinOpPatch, iothub.TwinResourceReported, amqp.UUID{9}, `{"fw":"2.0"}`)
			if r.Annotations[iothub.AnnotationStatus] != int32(204) || r.Annotations[iothub.AnnotationVersion] != int64(2) {
				t.Fatalf("PATCH: %v", r.Annotations)
			}
			if tw, _ := h.GetTwin(id); tw.Reported["fw"] != "2.0" {
				t.Fatalf("reported %v", tw.Reported)
			}
			r = twin(iothub.TwinOpPatch, iothub.TwinResourceReported, uint64(3), `not json`)
			if r.Annotations[iothub.AnnotationStatus] != int32(400) {
				t.Fatalf("bad PATCH: %v", r.Annotations)
			}
			if r = twin(iothub.TwinOpPut, iothub.TwinResourceDesired, "put-1", " "); r.Annotations[iothub.AnnotationStatus] != int32(200) {
				t.Fatalf("PUT: %v", r.Annotations)
			}
			if _, err := h.UpdateDesired(id, map[string]any{"interval": 30}); err != nil {
				t.Fatal(err)
			}
			up := receive(t, tRcv)
			if up.Properties != nil && up.Properties.CorrelationID != nil {
				t.Fatalf("desired update carries correlation-id %v", up.Properties.CorrelationID)
			}
			if string(up.GetData()) != `{"$version":2,"interval":30}` || up.Annotations[iothub.AnnotationVersion] != int64(2) {
				t.Fatalf("desired update %s %v", up.GetData(), up.Annotations)
			}
			if r = twin(iothub.TwinOpDelete, iothub.TwinResourceDesired, "del-1", " "); r.Annotations[iothub.AnnotationStatus] != int32(200) {
				t.Fatalf("DELETE: %v", r.Annotations)
			}

			// Closing the connection disconnects the device.
			if !h.Connected(id) {
				t.Fatal("the device is not connected while its links are attached")
			}
			if ci, _ := h.Connection(id); ci.Protocol != proto {
				t.Fatalf("connected over %s", ci.Protocol)
			}
			c.Close()
			waitFor(t, h, func() bool { return !h.Connected(id) })
		})
	}
}

func uuidBytes(t *testing.T, s string) []byte {
	t.Helper()
	var u amqp.UUID
	b := []byte(strings.ReplaceAll(s, "-", ""))
	if len(b) != 32 {
		t.Fatalf("lock token %q is not a uuid", s)
	}
	for i := range u {
		fmt.Sscanf(string(b[2*i:2*i+2]), "%02x", &u[i])
	}
	return u[:]
}

// encodeBatch is a message of format 0x80013700 whose data sections are the
// encoded messages, as the .NET SDK's SendEventsAsync sends.
func encodeBatch(t *testing.T, msgs ...*amqp.Message) *amqp.Message {
	t.Helper()
	out := &amqp.Message{Format: iothub.AMQPBatchFormat}
	for _, m := range msgs {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out.Data = append(out.Data, b)
	}
	return out
}

var _ = json.Valid
