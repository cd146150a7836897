package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// TestAMQPServiceC2DAndFeedback is the service side (spec §5.1): a C2D
// sender on /messages/devicebound and a feedback receiver on
// /messages/serviceBound/feedback, with a device that settles in
// rcv-settle-mode second as the .NET SDK does.
func TestAMQPServiceC2DAndFeedback(t *testing.T) {
	s := startServer(t, nil)
	setAMQPOptions(s, func(o *amqpOptions) { o.feedbackPoll = 10 * time.Millisecond })
	h := s.Hub
	ctx := within(t)

	dev := mustDialAMQP(t, s, amqpDialOpts{})
	dsess := authDevice(t, dev, "dev1")
	c2d, err := dsess.NewReceiver(ctx, "amqps://"+testHost+"/devices/dev1/messages/deviceBound",
		&amqp.ReceiverOptions{Credit: 10, SettlementMode: ptr(amqp.ReceiverSettleModeSecond)})
	if err != nil {
		t.Fatal(err)
	}

	svc := mustDialAMQP(t, s, amqpDialOpts{})
	ssess := newSession(t, svc)
	pol, _ := h.Policy("service")
	if r := newCBS(t, ssess).put(t, testHost, sas.Sign(testHost, pol.Keys[0], "service", time.Now().Add(time.Hour)), "svc"); r.status != 200 {
		t.Fatalf("service put-token: %d %s", r.status, r.desc)
	}
	snd, err := ssess.NewSender(ctx, "/messages/devicebound", nil)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := ssess.NewReceiver(ctx, "/messages/serviceBound/feedback", &amqp.ReceiverOptions{Credit: 5})
	if err != nil {
		t.Fatal(err)
	}

	msgID := amqp.UUID{0x12, 0x34}
	send := func(to string, body []byte, id any) error {
		return snd.Send(ctx, &amqp.Message{
			Properties:            &amqp.MessageProperties{MessageID: id, To: &to, CorrelationID: "corr-1"},
			ApplicationProperties: map[string]any{iothub.PropAck: "full", "cmd": "open"},
			Data:                  [][]byte{body},
		}, nil)
	}
	if err := send("/devices/dev1/messages/devicebound", []byte("open valve"), msgID); err != nil {
		t.Fatalf("service C2D send: %v", err)
	}
	m := receive(t, c2d)
	if string(m.GetData()) != "open valve" || m.Properties.MessageID != "12340000-0000-0000-0000-000000000000" || m.Properties.CorrelationID != "corr-1" ||
		m.ApplicationProperties["cmd"] != "open" || m.ApplicationProperties[iothub.PropAck] != "full" {
		t.Fatalf("the device got %+v %v", m.Properties, m.ApplicationProperties)
	}
	// In rcv-settle-mode second go-amqp waits for the hub's settled answer.
	if err := c2d.AcceptMessage(ctx, m); err != nil {
		t.Fatalf("complete: %v", err)
	}
	f := receive(t, fb)
	if f.Properties == nil || f.Properties.ContentType == nil || *f.Properties.ContentType != iothub.ContentTypeFeedback || string(f.Properties.UserID) != "test" {
		t.Fatalf("feedback properties %+v", f.Properties)
	}
	var recs []FeedbackRecord
	if err := json.Unmarshal(f.GetData(), &recs); err != nil || len(recs) != 1 || recs[0].OriginalMessageID != "12340000-0000-0000-0000-000000000000" ||
		recs[0].StatusCode != "Success" || recs[0].DeviceID != "dev1" {
		t.Fatalf("feedback %s: %v", f.GetData(), err)
	}
	if err := fb.AcceptMessage(ctx, f); err != nil {
		t.Fatal(err)
	}

	// Rejections.
	if _, err := h.AddDevice(Registration{Identity: iothub.Identity{DeviceID: "offline"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < iothub.C2DQueueDepth; i++ {
		if err := send("/devices/offline/messages/devicebound", []byte("x"), "fill"); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	tests := []struct {
		name, to string
		body     []byte
		cond     amqp.ErrCond
	}{
		{"unknown device", "/devices/nobody/messages/devicebound", []byte("x"), amqp.ErrCondNotFound},
		{"no device named", "", []byte("x"), amqp.ErrCondNotFound},
		{"over 64 KB", "/devices/dev1/messages/devicebound", make([]byte, iothub.MaxC2DSize+1), amqp.ErrCondMessageSizeExceeded},
		{"queue full", "/devices/offline/messages/devicebound", []byte("x"), amqp.ErrCondResourceLimitExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCondition(t, "send", send(tt.to, tt.body, "m"), tt.cond)
		})
	}
}

// TestAMQPC2DFlowControl checks that C2D deliveries follow link credit,
// split over frames the size the device asked for, and map each outcome.
func TestAMQPC2DFlowControl(t *testing.T) {
	s := startServer(t, nil)
	h := s.Hub
	ctx := within(t)
	c := mustDialAMQP(t, s, amqpDialOpts{conn: &amqp.ConnOptions{MaxFrameSize: 512}})
	sess := authDevice(t, c, "dev1")
	rcv, err := sess.NewReceiver(ctx, "/devices/dev1/messages/deviceBound", &amqp.ReceiverOptions{Credit: -1})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789"), 500)
	for i := 0; i < 4; i++ {
		if _, err := h.SendC2D("dev1", iothub.Message{Body: big, MessageID: string(rune('a' + i))}, C2DOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rcv.IssueCredit(2); err != nil {
		t.Fatal(err)
	}
	var got []*amqp.Message
	for i := 0; i < 2; i++ {
		m := receive(t, rcv)
		if !bytes.Equal(m.GetData(), big) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(m.GetData()), len(big))
		}
		got = append(got, m)
	}
	// A drain round trip: anything sent beyond the credit would arrive
	// before the hub's answer to it.
	if err := rcv.DrainCredit(ctx, nil); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if m := rcv.Prefetched(); m != nil {
		t.Fatalf("the hub sent %v beyond the credit", m.Properties.MessageID)
	}
	// Outcomes: modified with undeliverable-here rejects; modified with
	// delivery-failed abandons.
	if err := rcv.ModifyMessage(ctx, got[0], &amqp.ModifyMessageOptions{UndeliverableHere: true}); err != nil {
		t.Fatal(err)
	}
	if err := rcv.ModifyMessage(ctx, got[1], &amqp.ModifyMessageOptions{DeliveryFailed: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, h, func() bool { return h.stats.C2DRejected.Load() == 1 && h.stats.C2DAbandoned.Load() == 1 })
	if err := rcv.IssueCredit(3); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		m := receive(t, rcv)
		seen[m.Properties.MessageID.(string)] = true
		if err := rcv.AcceptMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if !seen["b"] || !seen["c"] || !seen["d"] {
		t.Fatalf("after more credit the device got %v; want b (abandoned, again), c and d", seen)
	}
	waitFor(t, h, func() bool { return h.C2DPending("dev1") == 0 })
}

// TestAMQPModuleLinks runs a module's telemetry, method and twin links.
func TestAMQPModuleLinks(t *testing.T) {
	s := startServer(t, nil)
	h := s.Hub
	ctx := within(t)
	dev := iothub.Identity{DeviceID: "edge1"}
	mod := iothub.Identity{DeviceID: "edge1", ModuleID: "sensor"}
	key := sas.DeriveKey(groupKey, "edge1")
	if _, err := h.AddDevice(Registration{Identity: dev, Keys: [2][]byte{key, key}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddDevice(Registration{Identity: mod, Keys: [2][]byte{key, key}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	c := mustDialAMQP(t, s, amqpDialOpts{})
	sess := newSession(t, c)
	if r := newCBS(t, sess).put(t, deviceName(mod), moduleTok(mod, time.Hour), "m"); r.status != 200 {
		t.Fatalf("module put-token: %d %s", r.status, r.desc)
	}
	if err := sendTelemetry(t, sess, mod, "from the module"); err != nil {
		t.Fatal(err)
	}
	got := h.Store().For(mod)
	if len(got) != 1 || got[0].System[iothub.PropConnectionModuleID] != "sensor" {
		t.Fatalf("stored %+v", got)
	}
	// A module receives its inputs on messages/events.
	if _, err := sess.NewReceiver(ctx, "/devices/edge1/modules/sensor/messages/events", nil); err != nil {
		t.Fatalf("module inputs link: %v", err)
	}
	tRcv, err := sess.NewReceiver(ctx, "/devices/edge1/modules/sensor/twin", &amqp.ReceiverOptions{Credit: 5})
	if err != nil {
		t.Fatal(err)
	}
	tSnd, err := sess.NewSender(ctx, "/devices/edge1/modules/sensor/twin", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tSnd.Send(ctx, &amqp.Message{Annotations: amqp.Annotations{iothub.AnnotationOperation: iothub.TwinOpPatch, iothub.AnnotationResource: iothub.TwinResourceReported},
		Properties: &amqp.MessageProperties{CorrelationID: "p"}, Data: [][]byte{[]byte(`{"m":1}`)}}, nil); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, tRcv); r.Annotations[iothub.AnnotationStatus] != int32(204) {
		t.Fatalf("module twin PATCH: %v", r.Annotations)
	}
	if tw, _ := h.GetTwin(mod); fmt.Sprint(tw.Reported["m"]) != "1" {
		t.Fatalf("module twin %v", tw.Reported)
	}
	if h.Connected(dev) || !h.Connected(mod) {
		t.Fatal("the module's links connected the device, or not the module")
	}
	// Ending the session detaches the module's last link, which
	// disconnects it.
	if err := sess.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, h, func() bool { return !h.Connected(mod) })
	if !strings.Contains(got[0].System[iothub.PropConnectionAuth], `"scope":"module"`) {
		t.Errorf("auth method %s", got[0].System[iothub.PropConnectionAuth])
	}
}

// TestAMQPUnsettledBound: a device that grants credit but never settles
// gets no more unsettled deliveries than the hub's bound; the rest wait
// until it settles.
func TestAMQPUnsettledBound(t *testing.T) {
	s := startServer(t, nil)
	setAMQPOptions(s, func(o *amqpOptions) { o.maxUnsettled = 2 })
	h := s.Hub
	ctx := within(t)
	sess := authDevice(t, mustDialAMQP(t, s, amqpDialOpts{}), "dev1")
	rcv, err := sess.NewReceiver(ctx, "/devices/dev1/messages/deviceBound", &amqp.ReceiverOptions{Credit: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := h.SendC2D("dev1", iothub.Message{Body: []byte{byte('a' + i)}}, C2DOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rcv.IssueCredit(10); err != nil {
		t.Fatal(err)
	}
	first := receive(t, rcv)
	receive(t, rcv)
	if err := rcv.DrainCredit(ctx, nil); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if m := rcv.Prefetched(); m != nil {
		t.Fatalf("a third unsettled delivery %q went out beyond the bound of 2", m.GetData())
	}
	if err := rcv.AcceptMessage(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := rcv.IssueCredit(1); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, rcv); string(m.GetData()) != "c" {
		t.Fatalf("after a settlement the device got %q, want the waiting c", m.GetData())
	}
}
