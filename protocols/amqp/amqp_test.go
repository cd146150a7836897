package amqp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
)

// TestEveryOperation runs each operation the AMQP transports support against
// the emulator, over loopback TCP and over the in-memory listeners, and
// checks the effect in the hub's store, twin and stats and in the device's
// ledger.
func TestEveryOperation(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		env := hubtest.Start(t, inMemory, nil)
		for _, proto := range []protocols.Protocol{protocols.AMQP, protocols.AMQPWebSocket} {
			t.Run(env.Name()+"/"+string(proto), func(t *testing.T) {
				devID := "dev-" + env.Name() + "-" + string(proto)
				id := iothub.Identity{DeviceID: devID}
				cfg, link := device(t, env, proto, devID)
				cfg.ModelID = "dtmi:com:example:Thermostat;1"
				cfg.ClientType = "catmsim/test"
				c := newClient(t, cfg)
				rec := newRecorder()
				rec.register(c)
				ctx := hubtest.Ctx(t)
				if err := c.Connect(ctx); err != nil {
					t.Fatal(err)
				}
				if !env.Hub.Connected(id) {
					t.Fatal("the hub does not show the device connected after Connect")
				}

				// Telemetry with system and application properties, then a batch.
				body := []byte(`{"temperature":21.5}`)
				m := &iothub.Message{Body: body, MessageID: "m-1", CorrelationID: "0f8fad5b-d9cb-469f-a165-70867728950e",
					ContentType: "application/json", ContentEncoding: "utf-8", InterfaceID: "dtmi:x;1",
					Properties: []iothub.Property{{Name: "alert", Value: "a/b c"}}}
				if err := c.SendTelemetry(ctx, m); err != nil {
					t.Fatal(err)
				}
				got := env.Hub.Store().For(id)
				if len(got) != 1 {
					t.Fatalf("stored %d messages once the send returned, want 1", len(got))
				}
				sm := got[0].Message
				if string(sm.Body) != string(body) || sm.MessageID != "m-1" || sm.CorrelationID != m.CorrelationID || sm.ContentType != "application/json" ||
					sm.ContentEncoding != "utf-8" || sm.InterfaceID != "dtmi:x;1" || got[0].Protocol != hub.Protocol(proto) {
					t.Fatalf("stored %+v over %s", sm, got[0].Protocol)
				}
				if v, _ := sm.Get("alert"); v != "a/b c" {
					t.Fatalf("property alert = %q", v)
				}
				batch := []*iothub.Message{{Body: []byte("b1"), MessageID: "m-b1"}, {Body: []byte("b2"), Properties: []iothub.Property{{Name: "k", Value: "v"}}}}
				if err := c.SendBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
				got = env.Hub.Store().For(id)
				if len(got) != 3 || string(got[1].Message.Body) != "b1" || got[1].Message.MessageID != "m-b1" || string(got[2].Message.Body) != "b2" {
					t.Fatalf("after the batch the store holds %d messages: %+v", len(got), got)
				}
				if v, _ := got[2].Message.Get("k"); v != "v" {
					t.Fatalf("batched property k = %q", v)
				}

				// C2D with each outcome. The hub's counters are shared by the
				// subtests.
				before := env.Hub.Stats().C2D
				if _, err := env.Hub.SendC2D(devID, iothub.Message{Body: []byte("open valve"), MessageID: "c-1", Properties: []iothub.Property{{Name: "k", Value: "v/w"}}}, hub.C2DOptions{}); err != nil {
					t.Fatal(err)
				}
				cm := next(t, rec.c2d, "C2D message")
				if string(cm.Body) != "open valve" || cm.MessageID != "c-1" || cm.LockToken == "" || cm.DeliveryCount != 0 || cm.Enqueued.IsZero() {
					t.Fatalf("C2D %+v", cm)
				}
				if v, _ := cm.Get("k"); v != "v/w" {
					t.Fatalf("C2D property k = %q", v)
				}
				hubtest.WaitFor(t, env.Hub, "C2D completed", func() bool { return env.Hub.Stats().C2D["completed"] == before["completed"]+1 })

				// Abandoned once, the message comes back with its delivery count
				// up, and is completed.
				rec.setOutcome(func(m *protocols.C2DMessage) protocols.Outcome {
					if m.DeliveryCount == 0 {
						return protocols.Abandon
					}
					return protocols.Complete
				})
				if _, err := env.Hub.SendC2D(devID, iothub.Message{Body: []byte("retry")}, hub.C2DOptions{}); err != nil {
					t.Fatal(err)
				}
				first, again := next(t, rec.c2d, "C2D to abandon"), next(t, rec.c2d, "abandoned C2D again")
				if string(again.Body) != "retry" || again.DeliveryCount != 1 || again.LockToken == "" {
					t.Fatalf("redelivery %+v after %+v", again, first)
				}
				hubtest.WaitFor(t, env.Hub, "C2D abandoned then completed", func() bool {
					s := env.Hub.Stats().C2D
					return s["abandoned"] == before["abandoned"]+1 && s["completed"] == before["completed"]+2
				})
				rec.setOutcome(func(*protocols.C2DMessage) protocols.Outcome { return protocols.Reject })
				if _, err := env.Hub.SendC2D(devID, iothub.Message{Body: []byte("bad")}, hub.C2DOptions{}); err != nil {
					t.Fatal(err)
				}
				next(t, rec.c2d, "C2D to reject")
				hubtest.WaitFor(t, env.Hub, "C2D rejected", func() bool { return env.Hub.Stats().C2D["rejected"] == before["rejected"]+1 })

				// A direct method.
				res, err := env.Hub.InvokeMethod(ctx, id, "reboot", []byte(`{"delay":5}`), 5*time.Second, 0)
				if err != nil {
					t.Fatal(err)
				}
				wantResp := `{"method":"reboot","got":{"delay":5}}`
				if res.Status != 201 || string(res.Payload) != wantResp {
					t.Fatalf("method result %d %s", res.Status, res.Payload)
				}

				// Twin: get, reported patch, desired update.
				doc, err := c.GetTwin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var view struct{ Desired, Reported map[string]any }
				if err := json.Unmarshal(doc, &view); err != nil || view.Desired == nil || view.Reported == nil {
					t.Fatalf("twin %s: %v", doc, err)
				}
				patch := []byte(`{"firmware":"2.1.0"}`)
				v, err := c.PatchReported(ctx, patch)
				if err != nil {
					t.Fatal(err)
				}
				tw, err := env.Hub.GetTwin(id)
				if err != nil {
					t.Fatal(err)
				}
				twj, _ := json.Marshal(tw)
				if v != 2 || !strings.Contains(string(twj), `"firmware":"2.1.0"`) {
					t.Fatalf("reported version %d, twin %s", v, twj)
				}
				if _, err := env.Hub.UpdateDesired(id, map[string]any{"interval": 30}); err != nil {
					t.Fatal(err)
				}
				d := next(t, rec.desired, "desired patch")
				if d.version != 2 || !strings.Contains(d.patch, `"interval":30`) {
					t.Fatalf("desired %+v", d)
				}
				quiet(t, rec)

				if err := c.Close(ctx); err != nil {
					t.Fatal(err)
				}
				hubtest.WaitFor(t, env.Hub, "the hub to see the device go", func() bool { return !env.Hub.Connected(id) })
				s := link.Ledger().Snapshot()
				hubtest.CheckLayers(t, s, network.Up, network.ClassTelemetry, len(body)+len("b1")+len("b2"))
				hubtest.CheckLayers(t, s, network.Down, network.ClassC2D, len("open valve")+2*len("retry")+len("bad"))
				hubtest.CheckLayers(t, s, network.Down, network.ClassMethod, len(`{"delay":5}`))
				hubtest.CheckLayers(t, s, network.Up, network.ClassMethod, len(wantResp))
				hubtest.CheckLayers(t, s, network.Up, network.ClassTwin, len(patch))
				hubtest.CheckLayers(t, s, network.Down, network.ClassTwin, len(doc)+len(d.patch))
				if s.Bytes(network.LayerTLS, network.Up, network.ClassConnect) == 0 || s.Bytes(network.LayerProtocol, network.Down, network.ClassConnect) == 0 {
					t.Error("no connect bytes")
				}
				if n := s.Conns(network.ReasonInitial); n != 1 {
					t.Errorf("%d initial connections, want 1", n)
				}
				for _, cl := range []network.Class{network.ClassOther, network.ClassReconnect, network.ClassTokenRenewal} {
					for _, dir := range []network.Direction{network.Up, network.Down} {
						if n := s.Bytes(network.LayerProtocol, dir, cl); n != 0 {
							t.Errorf("%d protocol bytes %s in class %s", n, dir, cl)
						}
					}
				}
			})
		}
	}
}
