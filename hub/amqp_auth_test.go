package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// sendTelemetry attaches a telemetry sender for id and sends one message.
func sendTelemetry(t *testing.T, sess *amqp.Session, id iothub.Identity, body string) error {
	t.Helper()
	ctx := within(t)
	snd, err := sess.NewSender(ctx, iothub.AMQPPath(iothub.AMQPNodeEvents, id), nil)
	if err != nil {
		return err
	}
	return snd.Send(ctx, amqp.NewMessage([]byte(body)), nil)
}

func TestAMQPSASL(t *testing.T) {
	s := startServer(t, nil)
	h := s.Hub
	now := time.Now()
	cert, err := sas.IssueDevice(nil, "x509-dev", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddDevice(Registration{Identity: iothub.Identity{DeviceID: "x509-dev"}, Auth: AuthSelfSigned, Thumbprints: [2]string{sas.Thumbprint(cert.Leaf)}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	svc, _ := h.Policy("service")
	devPol, _ := h.Policy("device")
	tests := []struct {
		name   string
		dev    string // the device that sends telemetry; empty: a service link
		opts   amqpDialOpts
		cbs    bool   // authenticate with a put-token after connecting
		method string // stamped auth type
	}{
		{"PLAIN with a device token", "plain-dev", amqpDialOpts{sasl: amqp.SASLTypePlain("plain-dev@sas.test", devTok("plain-dev", time.Hour))}, false, "symkey"},
		{"PLAIN with a gateway token", "gw-dev", amqpDialOpts{sasl: amqp.SASLTypePlain("gw-dev@sas.test", sas.Sign(testHost+"/devices", devPol.Keys[0], "device", time.Now().Add(time.Hour)))}, false, "sas"},
		{"PLAIN with a policy token", "", amqpDialOpts{sasl: amqp.SASLTypePlain("service@sas.root.test", sas.Sign(testHost, svc.Keys[0], "service", time.Now().Add(time.Hour)))}, false, ""},
		{"ANONYMOUS, then CBS", "anon-dev", amqpDialOpts{sasl: amqp.SASLTypeAnonymous()}, true, "symkey"},
		{"no SASL, then CBS", "plain-header-dev", amqpDialOpts{}, true, "symkey"},
		{"EXTERNAL with a client certificate", "x509-dev", amqpDialOpts{sasl: amqp.SASLTypeExternal(""), certs: []tls.Certificate{cert}}, false, "x509"},
		{"no SASL with a client certificate", "x509-dev", amqpDialOpts{certs: []tls.Certificate{cert}}, false, "x509"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustDialAMQP(t, s, tt.opts)
			sess := newSession(t, c)
			if tt.cbs {
				if r := newCBS(t, sess).put(t, deviceName(iothub.Identity{DeviceID: tt.dev}), devTok(tt.dev, time.Hour), "p"); r.status != 200 {
					t.Fatalf("put-token: %d %s", r.status, r.desc)
				}
			}
			if tt.dev == "" {
				if _, err := sess.NewSender(within(t), "/messages/devicebound", nil); err != nil {
					t.Fatalf("service sender: %v", err)
				}
				return
			}
			id := iothub.Identity{DeviceID: tt.dev}
			before := h.Store().CountFor(id)
			if err := sendTelemetry(t, sess, id, "hello "+tt.name); err != nil {
				t.Fatalf("telemetry: %v", err)
			}
			got := h.Store().For(id)
			if len(got) != before+1 || string(got[before].Message.Body) != "hello "+tt.name ||
				!strings.Contains(got[before].System[iothub.PropConnectionAuth], `"type":"`+tt.method+`"`) {
				t.Fatalf("stored %+v", got)
			}
		})
	}
	refused := []struct {
		name string
		opts amqpDialOpts
	}{
		{"PLAIN with a token signed by another key", amqpDialOpts{sasl: amqp.SASLTypePlain("dev1@sas.test", sas.Sign(sas.DeviceResource(testHost, "dev1", ""), []byte("not the key"), "", time.Now().Add(time.Hour)))}},
		{"PLAIN naming another device than the token", amqpDialOpts{sasl: amqp.SASLTypePlain("dev2@sas.test", devTok("dev1", time.Hour))}},
		{"PLAIN for another hub", amqpDialOpts{sasl: amqp.SASLTypePlain("dev1@sas.other", devTok("dev1", time.Hour))}},
		{"PLAIN with an expired token", amqpDialOpts{sasl: amqp.SASLTypePlain("dev1@sas.test", devTok("dev1", -time.Minute))}},
		{"EXTERNAL without a certificate", amqpDialOpts{sasl: amqp.SASLTypeExternal("")}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			// go-amqp reports the sasl-outcome code: 1 is auth.
			if _, err := dialAMQP(t, s, tt.opts); err == nil || !strings.Contains(err.Error(), "code 0x1") {
				t.Fatalf("connected, or failed otherwise: %v", err)
			}
		})
	}
}

// TestAMQPPutToken checks the hub's CBS answers (spec §3.3): 200 with the
// request's message-id as correlation-id, 401 for tokens it does not take
// (the name is checked against the token, not trusted), 404 for an unknown
// identity, 400 for a malformed request.
func TestAMQPPutToken(t *testing.T) {
	s := startServer(t, nil)
	h := s.Hub
	dev, _ := h.Policy("device")
	svc, _ := h.Policy("service")
	tests := []struct {
		name, op, typ, audience, token string
		status                         int
	}{
		{"device token", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, deviceName(iothub.Identity{DeviceID: "d1"}), devTok("d1", time.Hour), 200},
		{"unencoded name (C SDK)", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, sas.DeviceResource(testHost, "d1", ""), devTok("d1", time.Hour), 200},
		{"older token type", iothub.CBSPutToken, "azure-devices.net:sastoken", deviceName(iothub.Identity{DeviceID: "d1"}), devTok("d1", time.Hour), 200},
		{"gateway policy token", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, testHost + "/devices", sas.Sign(testHost+"/devices", dev.Keys[0], "device", time.Now().Add(time.Hour)), 200},
		{"service token", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, testHost, sas.Sign(testHost, svc.Keys[0], "service", time.Now().Add(time.Hour)), 200},
		{"signed with another key", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, deviceName(iothub.Identity{DeviceID: "d1"}),
			sas.Sign(sas.DeviceResource(testHost, "d1", ""), []byte("wrong key"), "", time.Now().Add(time.Hour)), 401},
		{"expired", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, deviceName(iothub.Identity{DeviceID: "d1"}), devTok("d1", -time.Minute), 401},
		{"name outside the token's scope", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, deviceName(iothub.Identity{DeviceID: "d2"}), devTok("d1", time.Hour), 401},
		{"another hub", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, "other.azure-devices.net/devices/d1",
			sas.Sign("other.azure-devices.net/devices/d1", sas.DeriveKey(groupKey, "d1"), "", time.Now().Add(time.Hour)), 401},
		{"not a SAS token", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, deviceName(iothub.Identity{DeviceID: "d1"}), "Bearer abc", 401},
		{"unknown module", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, deviceName(iothub.Identity{DeviceID: "d1", ModuleID: "m9"}),
			moduleTok(iothub.Identity{DeviceID: "d1", ModuleID: "m9"}, time.Hour), 404},
		{"JWT type", iothub.CBSPutToken, "jwt", deviceName(iothub.Identity{DeviceID: "d1"}), devTok("d1", time.Hour), 400},
		{"unknown operation", "get-token", iothub.CBSTokenTypeSAS, deviceName(iothub.Identity{DeviceID: "d1"}), devTok("d1", time.Hour), 400},
		{"no name", iothub.CBSPutToken, iothub.CBSTokenTypeSAS, "", devTok("d1", time.Hour), 400},
	}
	c := mustDialAMQP(t, s, amqpDialOpts{})
	cbs := newCBS(t, newSession(t, c))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failures := h.Stats().AuthFailures
			r := cbs.request(t, tt.op, tt.typ, tt.audience, tt.token, uint64(i))
			if r.status != tt.status || r.corr != uint64(i) {
				t.Fatalf("status %d (%s), correlation-id %T %v; want %d and the ulong %d", r.status, r.desc, r.corr, r.corr, tt.status, i)
			}
			if tt.status == 401 && h.Stats().AuthFailures == failures {
				t.Error("a refused token was not counted as an authentication failure")
			}
		})
	}
}

func TestAMQPAttachAuthorization(t *testing.T) {
	s := startServer(t, nil)
	h := s.Hub
	dev, _ := h.Policy("device")
	tests := []struct {
		name    string
		setup   func(t *testing.T, sess *amqp.Session)
		role    string // "sender" or "receiver"
		address string
		cond    amqp.ErrCond // "" for accepted
	}{
		{"before any put-token", nil, "sender", "/devices/dev1/messages/events", amqp.ErrCondUnauthorizedAccess},
		{"another device's telemetry", cbsFor("dev1"), "sender", "/devices/dev2/messages/events", amqp.ErrCondUnauthorizedAccess},
		{"another device's C2D", cbsFor("dev1"), "receiver", "/devices/dev2/messages/deviceBound", amqp.ErrCondUnauthorizedAccess},
		{"another device's module", cbsFor("dev1"), "sender", "/devices/dev2/modules/m1/messages/events", amqp.ErrCondUnauthorizedAccess},
		{"service C2D with a device token", cbsFor("dev1"), "sender", "/messages/devicebound", amqp.ErrCondUnauthorizedAccess},
		{"feedback with a device token", cbsFor("dev1"), "receiver", "/messages/serviceBound/feedback", amqp.ErrCondUnauthorizedAccess},
		{"unknown node", cbsFor("dev1"), "sender", "/devices/dev1/messages/elsewhere", amqp.ErrCondNotFound},
		{"sending on deviceBound", cbsFor("dev1"), "sender", "/devices/dev1/messages/deviceBound", amqp.ErrCondNotAllowed},
		{"own telemetry", cbsFor("dev1"), "sender", "/devices/dev1/messages/events", ""},
		{"absolute address with an encoded id (.NET, C)", cbsFor("dev1"), "sender", "amqps://" + testHost + "/devices/dev%31/messages/events", ""},
		{"devicebound in lower case", cbsFor("dev1"), "receiver", "/devices/dev1/messages/devicebound", ""},
		{"any device under a gateway token", func(t *testing.T, sess *amqp.Session) {
			r := newCBS(t, sess).put(t, testHost+"/devices", sas.Sign(testHost+"/devices", dev.Keys[0], "device", time.Now().Add(time.Hour)), "g")
			if r.status != 200 {
				t.Fatalf("put-token: %d %s", r.status, r.desc)
			}
		}, "sender", "/devices/gw-child/messages/events", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustDialAMQP(t, s, amqpDialOpts{})
			sess := newSession(t, c)
			if tt.setup != nil {
				tt.setup(t, sess)
			}
			var err error
			if tt.role == "sender" {
				_, err = sess.NewSender(within(t), tt.address, nil)
			} else {
				_, err = sess.NewReceiver(within(t), tt.address, nil)
			}
			if tt.cond == "" {
				if err != nil {
					t.Fatalf("attach refused: %v", err)
				}
				return
			}
			wantCondition(t, "attach", err, tt.cond)
			// The connection survives a refused link.
			if _, err := sess.NewSender(within(t), iothub.AMQPCBSAddress, nil); err != nil {
				t.Fatalf("the connection did not survive the refusal: %v", err)
			}
		})
	}
}

func cbsFor(dev string) func(*testing.T, *amqp.Session) {
	return func(t *testing.T, sess *amqp.Session) {
		t.Helper()
		if r := newCBS(t, sess).put(t, deviceName(iothub.Identity{DeviceID: dev}), devTok(dev, time.Hour), "p"); r.status != 200 {
			t.Fatalf("put-token: %d %s", r.status, r.desc)
		}
	}
}

type denyD2C struct{}

func (denyD2C) Allow(op Op, _ iothub.Identity, _ int) error {
	if op == OpD2C {
		return iothub.Errorf(iothub.CodeThrottled, "throttled")
	}
	return nil
}

func TestAMQPTelemetryRejections(t *testing.T) {
	s := startServer(t, nil)
	throttled := startServer(t, func(c *ServerConfig) { c.Hub.Throttler = denyD2C{} })
	big := make([]byte, iothub.MaxD2CSize+1)
	tests := []struct {
		name string
		srv  *Server
		msg  *amqp.Message
		cond amqp.ErrCond
	}{
		{"over 256 KB", s, amqp.NewMessage(big), amqp.ErrCondMessageSizeExceeded},
		{"batch over 256 KB", s, encodeBatch(t, amqp.NewMessage(big[:200<<10]), amqp.NewMessage(big[:100<<10])), amqp.ErrCondMessageSizeExceeded},
		{"over the delivery limit", s, amqp.NewMessage(make([]byte, 2<<20)), amqp.ErrCondMessageSizeExceeded},
		{"a map as an application property", s, &amqp.Message{Data: [][]byte{{1}}, ApplicationProperties: map[string]any{"m": map[string]any{"a": "b"}}}, "com.microsoft:argument-error"},
		{"throttled", throttled, amqp.NewMessage([]byte("x")), "com.microsoft:device-container-throttled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustDialAMQP(t, tt.srv, amqpDialOpts{})
			sess := authDevice(t, c, "dev1")
			snd, err := sess.NewSender(within(t), "/devices/dev1/messages/events", nil)
			if err != nil {
				t.Fatal(err)
			}
			before := tt.srv.Hub.Store().Len()
			wantCondition(t, "send", snd.Send(within(t), tt.msg, nil), tt.cond)
			if tt.srv.Hub.Store().Len() != before {
				t.Fatal("a rejected message was stored")
			}
			// The link stays usable: a rejection is per message.
			if tt.srv == s {
				if err := snd.Send(within(t), amqp.NewMessage([]byte("fine")), nil); err != nil {
					t.Fatalf("the next message: %v", err)
				}
			}
		})
	}
}

// shiftedClock makes the hub's clock run ahead so that a token signed for
// a minute from now expires, for the hub, after d.
func shiftedClock(se time.Time, d time.Duration) func() time.Time {
	shift := time.Until(se) - d
	return func() time.Time { return time.Now().Add(shift) }
}

// TestAMQPTokenExpiry lets a CBS token expire on a live connection: the
// device's links are detached with amqp:unauthorized-access, the connection
// and its $cbs links stay, and a new put-token lets the device attach again.
// A token renewed in time keeps the links; a SASL PLAIN connection closes.
func TestAMQPTokenExpiry(t *testing.T) {
	se := time.Unix(time.Now().Add(time.Minute).Unix(), 0)
	signed := func(id string, exp time.Time) string {
		return sas.Sign(sas.DeviceResource(testHost, id, ""), sas.DeriveKey(groupKey, id), "", exp)
	}
	t.Run("expires", func(t *testing.T) {
		s := startServer(t, func(c *ServerConfig) { c.Hub.Now = shiftedClock(se, 300*time.Millisecond) })
		h := s.Hub
		c := mustDialAMQP(t, s, amqpDialOpts{})
		sess := newSession(t, c)
		cbs := newCBS(t, sess)
		if r := cbs.put(t, deviceName(iothub.Identity{DeviceID: "dev1"}), signed("dev1", se), "p1"); r.status != 200 {
			t.Fatalf("put-token: %d %s", r.status, r.desc)
		}
		rcv, err := sess.NewReceiver(within(t), "/devices/dev1/messages/deviceBound", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = rcv.Receive(within(t), nil)
		wantCondition(t, "the C2D link when the token expired", err, amqp.ErrCondUnauthorizedAccess)
		waitFor(t, h, func() bool { return !h.Connected(iothub.Identity{DeviceID: "dev1"}) })
		if h.Stats().TokenExpiries != 1 {
			t.Fatalf("token expiries %d", h.Stats().TokenExpiries)
		}
		// An attach with only the expired token is refused; a new token
		// lets the device back in on the same connection.
		_, err = sess.NewSender(within(t), "/devices/dev1/messages/events", nil)
		wantCondition(t, "attach with the expired token", err, amqp.ErrCondUnauthorizedAccess)
		if r := cbs.put(t, deviceName(iothub.Identity{DeviceID: "dev1"}), signed("dev1", se.Add(time.Hour)), "p2"); r.status != 200 {
			t.Fatalf("put-token: %d %s", r.status, r.desc)
		}
		if err := sendTelemetry(t, sess, iothub.Identity{DeviceID: "dev1"}, "back"); err != nil {
			t.Fatalf("after a new token: %v", err)
		}
	})
	t.Run("renewed in time", func(t *testing.T) {
		s := startServer(t, func(c *ServerConfig) { c.Hub.Now = shiftedClock(se, 700*time.Millisecond) })
		h := s.Hub
		c := mustDialAMQP(t, s, amqpDialOpts{})
		sess := newSession(t, c)
		cbs := newCBS(t, sess)
		if r := cbs.put(t, deviceName(iothub.Identity{DeviceID: "dev1"}), signed("dev1", se), "p1"); r.status != 200 {
			t.Fatalf("put-token: %d %s", r.status, r.desc)
		}
		snd, err := sess.NewSender(within(t), "/devices/dev1/messages/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := cbs.put(t, deviceName(iothub.Identity{DeviceID: "dev1"}), signed("dev1", se.Add(time.Hour)), "p2"); r.status != 200 {
			t.Fatalf("renewal: %d %s", r.status, r.desc)
		}
		if h.Stats().TokenRenewals != 1 {
			t.Fatalf("renewals %d, want 1", h.Stats().TokenRenewals)
		}
		// Past the first token's expiry the link still works.
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if err := snd.Send(within(t), amqp.NewMessage([]byte("x")), nil); err != nil {
				t.Fatalf("send after renewal: %v", err)
			}
		}
		if h.Stats().TokenExpiries != 0 || !h.Connected(iothub.Identity{DeviceID: "dev1"}) {
			t.Fatal("the renewed connection was closed")
		}
	})
	for _, links := range []bool{true, false} {
		t.Run(map[bool]string{true: "SASL PLAIN closes", false: "SASL PLAIN without links closes"}[links], func(t *testing.T) {
			s := startServer(t, func(c *ServerConfig) { c.Hub.Now = shiftedClock(se, 300*time.Millisecond) })
			c := mustDialAMQP(t, s, amqpDialOpts{sasl: amqp.SASLTypePlain("dev1@sas.test", signed("dev1", se))})
			if links {
				if _, err := newSession(t, c).NewSender(within(t), "/devices/dev1/messages/events", nil); err != nil {
					t.Fatal(err)
				}
			}
			waitClosedUnauthorized(t, c)
		})
	}
}

func waitClosedUnauthorized(t *testing.T, c *amqp.Conn) {
	t.Helper()
	{
		select {
		case <-c.Done():
		case <-within(t).Done():
			t.Fatal("the SASL PLAIN connection outlived its token")
		}
		var ce *amqp.ConnError
		if !errors.As(c.Err(), &ce) || ce.RemoteErr == nil || ce.RemoteErr.Condition != amqp.ErrCondUnauthorizedAccess {
			t.Fatalf("connection ended with %v, want close with %s", c.Err(), amqp.ErrCondUnauthorizedAccess)
		}
	}
}

var _ = context.Background
