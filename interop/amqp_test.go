package interop

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// TestAMQPNodeTokenRenewal gives the Node SDK over AMQP tokens valid for a
// few seconds. Unlike MQTT, AMQP renews in-band: the SDK puts each new token
// on $cbs of the same connection, and the hub must extend the connection
// rather than sever it when the first token expires.
func TestAMQPNodeTokenRenewal(t *testing.T) {
	node := requireNode(t, nodeAMQPPackages...)
	t.Parallel()
	const tokenSeconds, tokenMargin = 6, 3
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	e := startEmulator(t, nil)
	h := e.hub()
	id := iothub.Identity{DeviceID: "node-amqp-renewal"}
	events := watch(t, h)
	cs, err := h.DeviceConnectionString(id.DeviceID, "127.0.0.1:"+strconv.Itoa(e.srv.AMQPPort()))
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(ctx, t, "amqp_renew.js", nodeDir(t), []string{
		"CATMSIM_CONNECTION_STRING=" + cs,
		"CATMSIM_CA_FILE=" + e.caFile,
		"CATMSIM_TOKEN_SECONDS=" + strconv.Itoa(tokenSeconds),
		"CATMSIM_TOKEN_MARGIN=" + strconv.Itoa(tokenMargin),
		"DEBUG=azure-iot-device*,azure-iot-amqp-base*",
	}, node, "amqp_renew.js")
	p.expect(ctx, "connected", nil)
	// The first message attaches the telemetry link, which opens the
	// device's hub connection that the renewals must keep alive.
	p.send("send before-renewal")
	p.expect(ctx, "sent", nil)
	// Two renewals: by the second the first token has expired.
	p.expect(ctx, "renewed", nil)
	p.expect(ctx, "renewed", nil)
	p.send("send after-renewal")
	p.expect(ctx, "sent", nil)
	got := storedFor(ctx, t, h, id, 2)
	if len(got) != 2 || got[1].Message.MessageID != "after-renewal" {
		t.Errorf("stored %+v, want the messages sent before and after renewing", got)
	}
	st := h.Stats()
	if st.TokenRenewals < 1 || st.TokenExpiries != 0 {
		t.Errorf("%d renewals and %d expiries; want at least one renewal on the live connection and no expiry", st.TokenRenewals, st.TokenExpiries)
	}
	if n := st.Protocols[hub.AMQP].Connects; n != 1 {
		t.Errorf("the device connected %d times; in-band renewal needs one connection", n)
	}
	p.closeAndWait(ctx)
	waitEvent(ctx, t, events, "the disconnection", func(ev hub.Event) bool {
		return ev.Kind == hub.EventDisconnected && ev.Identity == id
	})
}

// TestAMQPNodeServiceSDK sends cloud-to-device messages with the official
// service SDK, azure-iothub, to a device connected with go-amqp, and reads
// the delivery feedback with it.
func TestAMQPNodeServiceSDK(t *testing.T) {
	node := requireNode(t, "azure-iothub")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	e := startEmulator(t, nil)
	h := e.hub()

	// The device, on go-amqp.
	dev := dialGoAMQP(t, e, nil)
	sess := goAMQPSession(t, dev)
	putToken(t, sess, sas.DeviceResource(hubHost, "svc-target", ""), e.token("svc-target"))
	c2d, err := sess.NewReceiver(ctx, "/devices/svc-target/messages/devicebound", &amqp.ReceiverOptions{Credit: 10})
	if err != nil {
		t.Fatal(err)
	}

	pol, _ := h.Policy("service")
	p := startProcess(ctx, t, "service_c2d.js", nodeDir(t), []string{
		"CATMSIM_AMQP_HOST=127.0.0.1:" + strconv.Itoa(e.srv.AMQPPort()),
		"CATMSIM_SERVICE_SAS=" + sas.Sign(hubHost, pol.Keys[0], "service", time.Now().Add(time.Hour)),
		"NODE_EXTRA_CA_CERTS=" + e.caFile,
		"DEBUG=azure-iothub*,azure-iot-amqp-base*",
	}, node, "service_c2d.js")
	p.expect(ctx, "connected", nil)
	p.expect(ctx, "feedback_ready", nil)
	cmd := func(v map[string]any) {
		b, _ := json.Marshal(v)
		p.send(string(b))
	}
	// A uuid-looking message id goes out as an AMQP uuid (the SDK's
	// encodeUuid); the device sees it as the same text.
	msgID := "6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"
	cmd(map[string]any{"device": "svc-target", "messageId": msgID, "body": "open valve 3", "ack": "full", "properties": map[string]string{"command": "open"}})
	sent := decode[struct{ MessageID string }](t, p.expect(ctx, "sent", nil))
	if sent.MessageID != msgID {
		t.Fatalf("sent %q", sent.MessageID)
	}
	m, err := c2d.Receive(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.GetData()) != "open valve 3" || m.Properties.MessageID != msgID || m.ApplicationProperties["command"] != "open" || m.ApplicationProperties[iothub.PropAck] != "full" {
		t.Fatalf("the device got %+v %v %q", m.Properties, m.ApplicationProperties, m.GetData())
	}
	if err := c2d.AcceptMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	fb := decode[struct {
		Records     []hub.FeedbackRecord
		ContentType string
	}](t, p.expect(ctx, "feedback", nil))
	if len(fb.Records) != 1 || fb.Records[0].OriginalMessageID != msgID || fb.Records[0].StatusCode != "Success" ||
		fb.Records[0].DeviceID != "svc-target" || fb.ContentType != iothub.ContentTypeFeedback {
		t.Fatalf("the SDK got feedback %+v", fb)
	}

	// Refusals the SDK maps to its own errors.
	cmd(map[string]any{"device": "nobody-here", "messageId": "m-2", "body": "x"})
	failed := decode[struct{ MessageID, Name string }](t, p.expect(ctx, "send_failed", nil))
	if failed.Name != "DeviceNotFoundError" {
		t.Errorf("sending to an unknown device failed with %s, want DeviceNotFoundError", failed.Name)
	}
	if _, err := h.AddDevice(hub.Registration{Identity: iothub.Identity{DeviceID: "offline"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= iothub.C2DQueueDepth; i++ {
		cmd(map[string]any{"device": "offline", "messageId": "q-" + strconv.Itoa(i), "body": "x"})
	}
	for i := 0; i < iothub.C2DQueueDepth; i++ {
		p.expect(ctx, "sent", nil)
	}
	failed = decode[struct{ MessageID, Name string }](t, p.expect(ctx, "send_failed", nil))
	if failed.Name != "DeviceMaximumQueueDepthExceededError" {
		t.Errorf("the 51st message failed with %s, want DeviceMaximumQueueDepthExceededError (amqp:resource-limit-exceeded)", failed.Name)
	}
	if n := h.C2DPending("offline"); n != iothub.C2DQueueDepth {
		t.Errorf("%d messages wait for the offline device, want %d", n, iothub.C2DQueueDepth)
	}
	p.closeAndWait(ctx)
}

// requireProton skips the test unless Debian's python3-qpid-proton loads.
func requireProton(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Skip("skipping: /usr/bin/python3 is missing; install Debian's python3-qpid-proton (.ci/run installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := runTool(ctx, []string{debianPython, "-c", "import proton.utils"}, nil); err != nil {
		t.Skipf("skipping: qpid-proton does not load under /usr/bin/python3 (%v: %s); install Debian's python3-qpid-proton (.ci/run installs it)", err, strings.TrimSpace(out))
	}
	script, err := filepath.Abs(filepath.Join("python", "proton_send.py"))
	if err != nil {
		t.Fatal(err)
	}
	return script
}

// TestAMQPQpidProton sends telemetry with Apache Qpid Proton for Python over
// SASL PLAIN with a SAS token, and checks that a bad token is refused.
func TestAMQPQpidProton(t *testing.T) {
	script := requireProton(t)
	t.Parallel()
	e := startEmulator(t, nil)
	h := e.hub()
	argv := func(dev, token string, extra ...string) []string {
		return append([]string{debianPython, script, "--hostname", "127.0.0.1", "--port", strconv.Itoa(e.srv.AMQPPort()), "--hub", hubHost,
			"--device", dev, "--sas-token", token, "--ca-file", e.caFile}, extra...)
	}
	t.Run("telemetry", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		id := iothub.Identity{DeviceID: "proton-dev"}
		out, err := runTool(ctx, argv(id.DeviceID, e.token(id.DeviceID), "--body", `{"t":1}`, "--body", `{"t":2}`, "--message-id", "pm", "--property", "source=qpid-proton", "--property", "note=a b/c"), nil)
		if err != nil {
			t.Fatalf("proton_send.py: %v\n%s", err, out)
		}
		got := storedFor(ctx, t, h, id, 2)
		for i, sm := range got {
			m := sm.Message
			if sm.Protocol != hub.AMQP || string(m.Body) != fmt.Sprintf(`{"t":%d}`, i+1) || m.MessageID != fmt.Sprintf("pm-%d", i) || m.ContentType != "text/plain" {
				t.Errorf("message %d stored as %+v over %s", i, m, sm.Protocol)
			}
			if v, _ := m.Get("source"); v != "qpid-proton" {
				t.Errorf("message %d: application property source = %q", i, v)
			}
			if v, _ := m.Get("note"); v != "a b/c" {
				t.Errorf("message %d: application property note = %q", i, v)
			}
		}
		if !strings.Contains(got[0].System[iothub.PropConnectionAuth], `"type":"symkey"`) {
			t.Errorf("auth method %s", got[0].System[iothub.PropConnectionAuth])
		}
	})
	t.Run("token signed with the wrong key", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bad := sas.Sign(sas.DeviceResource(hubHost, "proton-bad", ""), []byte("not the device key"), "", time.Now().Add(time.Hour))
		events := watch(t, h)
		out, err := runTool(ctx, argv("proton-bad", bad, "--body", "refused"), nil)
		if err == nil || ctx.Err() != nil {
			t.Fatalf("proton_send.py with a bad token: %v\n%s", err, out)
		}
		waitEvent(ctx, t, events, "the authentication failure", func(ev hub.Event) bool { return ev.Kind == hub.EventAuthFailed })
		if n := h.Store().CountFor(iothub.Identity{DeviceID: "proton-bad"}); n != 0 {
			t.Errorf("stored %d messages from a refused client", n)
		}
		t.Logf("refused as the hub should; proton said: %s", strings.TrimSpace(out))
	})
}

// dialGoAMQP connects Azure/go-amqp to the emulator's AMQP/TLS port.
func dialGoAMQP(t *testing.T, e *emulator, opts *amqp.ConnOptions) *amqp.Conn {
	t.Helper()
	c, err := tryGoAMQP(t, e, opts)
	if err != nil {
		t.Fatalf("connecting with go-amqp: %v", err)
	}
	return c
}

func tryGoAMQP(t *testing.T, e *emulator, opts *amqp.ConnOptions) (*amqp.Conn, error) {
	t.Helper()
	if opts == nil {
		opts = &amqp.ConnOptions{}
	}
	opts.TLSConfig = &tls.Config{RootCAs: e.srv.Chain().CertPool(), ServerName: hubHost}
	opts.HostName = hubHost
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := amqp.Dial(ctx, "amqps://127.0.0.1:"+strconv.Itoa(e.srv.AMQPPort()), opts)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

func goAMQPSession(t *testing.T, c *amqp.Conn) *amqp.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putToken does a CBS put-token as the Node SDK does (string message-id,
// reply-to "cbs") and returns the status-code.
func putTokenStatus(t *testing.T, sess *amqp.Session, audience, token string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snd, err := sess.NewSender(ctx, "$cbs", nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := sess.NewReceiver(ctx, "$cbs", nil)
	if err != nil {
		t.Fatal(err)
	}
	replyTo, to := "cbs", "$cbs"
	id := fmt.Sprintf("put-%d", time.Now().UnixNano())
	if err := snd.Send(ctx, &amqp.Message{
		Properties:            &amqp.MessageProperties{MessageID: id, ReplyTo: &replyTo, To: &to},
		ApplicationProperties: map[string]any{"operation": "put-token", "type": "servicebus.windows.net:sastoken", "name": sas.Encode(audience)},
		Value:                 token,
	}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := rcv.Receive(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = rcv.AcceptMessage(ctx, r)
	if r.Properties == nil || r.Properties.CorrelationID != id {
		t.Fatalf("put-token answer correlated to %v, want %q", r.Properties, id)
	}
	st, ok := r.ApplicationProperties["status-code"].(int32)
	if !ok {
		t.Fatalf("status-code %T, want an AMQP int", r.ApplicationProperties["status-code"])
	}
	_ = snd.Close(ctx)
	_ = rcv.Close(ctx)
	return st
}

func putToken(t *testing.T, sess *amqp.Session, audience, token string) {
	t.Helper()
	if st := putTokenStatus(t, sess, audience, token); st != 200 {
		t.Fatalf("put-token for %s: status %d", audience, st)
	}
}

func remoteCondition(err error) amqp.ErrCond {
	var le *amqp.LinkError
	if errors.As(err, &le) && le.RemoteErr != nil {
		return le.RemoteErr.Condition
	}
	var ce *amqp.ConnError
	if errors.As(err, &ce) && ce.RemoteErr != nil {
		return ce.RemoteErr.Condition
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return ae.Condition
	}
	return ""
}

// TestAMQPGoAMQP drives the emulator's AMQP/TLS port with Azure/go-amqp
// through its public API, and with hand-made frames for what no client
// sends: the negative cases of the issue.
func TestAMQPGoAMQP(t *testing.T) {
	t.Run("telemetry with SASL PLAIN", func(t *testing.T) {
		e := startEmulator(t, nil)
		id := iothub.Identity{DeviceID: "go-amqp-plain"}
		c := dialGoAMQP(t, e, &amqp.ConnOptions{SASLType: amqp.SASLTypePlain(id.DeviceID+"@sas."+iothub.HubName(hubHost), e.token(id.DeviceID))})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		snd, err := goAMQPSession(t, c).NewSender(ctx, "amqps://"+hubHost+"/devices/"+id.DeviceID+"/messages/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := snd.Send(ctx, &amqp.Message{Data: [][]byte{[]byte("from go-amqp")}, ApplicationProperties: map[string]any{"k": "v"}}, nil); err != nil {
			t.Fatal(err)
		}
		got := storedFor(ctx, t, e.hub(), id, 1)
		if string(got[0].Message.Body) != "from go-amqp" || got[0].Protocol != hub.AMQP {
			t.Fatalf("stored %+v", got[0])
		}
	})
	t.Run("bad token", func(t *testing.T) {
		e := startEmulator(t, nil)
		sess := goAMQPSession(t, dialGoAMQP(t, e, nil))
		bad := sas.Sign(sas.DeviceResource(hubHost, "d1", ""), []byte("wrong key"), "", time.Now().Add(time.Hour))
		if st := putTokenStatus(t, sess, sas.DeviceResource(hubHost, "d1", ""), bad); st != 401 {
			t.Fatalf("put-token with a bad signature: status %d, want 401", st)
		}
		_, err := sess.NewSender(context.Background(), "/devices/d1/messages/events", nil)
		if cond := remoteCondition(err); cond != amqp.ErrCondUnauthorizedAccess {
			t.Fatalf("attach after a refused token: %v, want %s", err, amqp.ErrCondUnauthorizedAccess)
		}
		if _, err := tryGoAMQP(t, e, &amqp.ConnOptions{SASLType: amqp.SASLTypePlain("d1@sas."+iothub.HubName(hubHost), bad)}); err == nil {
			t.Fatal("SASL PLAIN with a bad token connected")
		}
	})
	t.Run("token expiring mid-connection", func(t *testing.T) {
		// The hub's clock runs ahead, so that a token signed for a minute
		// expires for the hub half a second after it is put.
		se := time.Unix(time.Now().Add(time.Minute).Unix(), 0)
		shift := time.Until(se) - 500*time.Millisecond
		e := startEmulator(t, func(c *hub.ServerConfig) { c.Hub.Now = func() time.Time { return time.Now().Add(shift) } })
		h := e.hub()
		id := iothub.Identity{DeviceID: "expiring"}
		sess := goAMQPSession(t, dialGoAMQP(t, e, nil))
		putToken(t, sess, sas.DeviceResource(hubHost, id.DeviceID, ""), sas.Sign(sas.DeviceResource(hubHost, id.DeviceID, ""), sas.DeriveKey(groupKey, id.DeviceID), "", se))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rcv, err := sess.NewReceiver(ctx, "/devices/expiring/messages/devicebound", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = rcv.Receive(ctx, nil)
		if cond := remoteCondition(err); cond != amqp.ErrCondUnauthorizedAccess {
			t.Fatalf("the C2D link when the token expired: %v, want a detach with %s", err, amqp.ErrCondUnauthorizedAccess)
		}
		if h.Connected(id) || h.Stats().TokenExpiries != 1 {
			t.Fatalf("connected %v, expiries %d", h.Connected(id), h.Stats().TokenExpiries)
		}
	})
	t.Run("a link to another device's address", func(t *testing.T) {
		e := startEmulator(t, nil)
		sess := goAMQPSession(t, dialGoAMQP(t, e, nil))
		putToken(t, sess, sas.DeviceResource(hubHost, "mine", ""), e.token("mine"))
		for _, addr := range []string{"/devices/theirs/messages/events", "amqps://" + hubHost + "/devices/theirs/twin"} {
			_, err := sess.NewSender(context.Background(), addr, nil)
			if cond := remoteCondition(err); cond != amqp.ErrCondUnauthorizedAccess {
				t.Errorf("attach to %s: %v, want %s", addr, err, amqp.ErrCondUnauthorizedAccess)
			}
		}
		if _, err := sess.NewReceiver(context.Background(), "/devices/theirs/messages/devicebound", nil); remoteCondition(err) != amqp.ErrCondUnauthorizedAccess {
			t.Errorf("C2D receiver for another device: %v", err)
		}
	})
	t.Run("malformed and truncated frames", func(t *testing.T) {
		e := startEmulator(t, func(c *hub.ServerConfig) { c.ConnectTimeout = 2 * time.Second })
		tests := []struct {
			name string
			send []byte
			cond amqpwire.Symbol // "" when the hub just closes
		}{
			{"garbage performative", []byte{0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0x99, 0x45}, amqpwire.ConditionDecodeError},
			{"frame claiming 1 GB", []byte{0x40, 0, 0, 0, 2, 0, 0, 0}, amqpwire.ConditionFramingError},
			{"frame shorter than its header", []byte{0, 0, 0, 4, 2, 0, 0, 0}, amqpwire.ConditionFramingError},
			{"truncated frame", []byte{0, 0, 0, 200, 2, 0, 0, 0, 0x00, 0x53, 0x11}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(e.srv.AMQPPort()), &tls.Config{RootCAs: e.srv.Chain().CertPool(), ServerName: hubHost})
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				hdr := amqpwire.ProtocolAMQP.Header().Bytes()
				open, _ := amqpwire.AppendFrame(nil, amqpwire.FrameAMQP, 0, &amqpwire.Open{ContainerID: "raw"}, nil)
				msg := append(append(hdr[:], open...), tt.send...)
				if _, err := conn.Write(msg); err != nil {
					t.Fatal(err)
				}
				if tt.cond == "" {
					// Half a frame, then silence: the hub gives up at its
					// idle-time-out, far beyond this test; closing our side
					// must end the connection at once.
					if err := conn.CloseWrite(); err != nil {
						t.Fatal(err)
					}
				}
				fr := amqpwire.NewFrameReader(conn, 1<<20)
				if _, err := fr.ReadProtocolHeader(); err != nil {
					t.Fatal(err)
				}
				var closed *amqpwire.Close
				for closed == nil {
					f, err := fr.ReadFrame()
					if err != nil {
						if tt.cond == "" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
							return
						}
						t.Fatalf("reading the hub's answer: %v", err)
					}
					if p, _, err := f.Performative(); err == nil {
						closed, _ = p.(*amqpwire.Close)
					}
				}
				if tt.cond == "" || closed.Error == nil || closed.Error.Condition != tt.cond {
					t.Fatalf("close %+v, want the condition %q", closed.Error, tt.cond)
				}
				if _, err := io.Copy(io.Discard, conn); err != nil {
					t.Fatalf("after its close the hub should end the stream: %v", err)
				}
			})
		}
		// The emulator still serves others.
		id := iothub.Identity{DeviceID: "after-garbage"}
		c := dialGoAMQP(t, e, &amqp.ConnOptions{SASLType: amqp.SASLTypePlain(id.DeviceID+"@sas."+iothub.HubName(hubHost), e.token(id.DeviceID))})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		snd, err := goAMQPSession(t, c).NewSender(ctx, "/devices/after-garbage/messages/events", nil)
		if err == nil {
			err = snd.Send(ctx, amqp.NewMessage([]byte("ok")), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
}
