package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// The AMQP tests drive the front end with Azure/go-amqp, a client nobody
// here wrote, through its public API only.

const testHost = "test.azure-devices.net"

type amqpDialOpts struct {
	sasl  amqp.SASLType
	certs []tls.Certificate
	ws    bool // over WebSockets (AMQPWSB10)
	conn  *amqp.ConnOptions
}

// dialAMQP opens a go-amqp connection to the emulator over TLS, or over a
// secure WebSocket, and closes it when the test ends.
func dialAMQP(t *testing.T, s *Server, o amqpDialOpts) (*amqp.Conn, error) {
	t.Helper()
	opts := o.conn
	if opts == nil {
		opts = &amqp.ConnOptions{}
	}
	opts.SASLType = o.sasl
	opts.HostName = testHost
	tc := &tls.Config{RootCAs: s.Chain().CertPool(), ServerName: testHost, Certificates: o.certs}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var nc net.Conn
	var err error
	if o.ws {
		nc, err = dialAMQPWebSocket(ctx, s, tc)
	} else {
		nc, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", s.AMQPPort()), tc)
	}
	if err != nil {
		return nil, err
	}
	c, err := amqp.NewConn(ctx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

func mustDialAMQP(t *testing.T, s *Server, o amqpDialOpts) *amqp.Conn {
	t.Helper()
	c, err := dialAMQP(t, s, o)
	if err != nil {
		t.Fatalf("connecting over AMQP: %v", err)
	}
	return c
}

func newSession(t *testing.T, c *amqp.Conn) *amqp.Session {
	t.Helper()
	s, err := c.NewSession(within(t), nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	return s
}

// cbsClient puts tokens on $cbs as the SDKs do: a sender to $cbs and a
// receiver from it in one session, the reply correlated by message-id.
type cbsClient struct {
	snd *amqp.Sender
	rcv *amqp.Receiver
}

func newCBS(t *testing.T, sess *amqp.Session) *cbsClient {
	t.Helper()
	ctx := within(t)
	snd, err := sess.NewSender(ctx, iothub.AMQPCBSAddress, nil)
	if err != nil {
		t.Fatalf("attaching the $cbs sender: %v", err)
	}
	rcv, err := sess.NewReceiver(ctx, iothub.AMQPCBSAddress, &amqp.ReceiverOptions{TargetAddress: "cbs-reply", Credit: 10})
	if err != nil {
		t.Fatalf("attaching the $cbs receiver: %v", err)
	}
	return &cbsClient{snd: snd, rcv: rcv}
}

type cbsReply struct {
	status int
	desc   string
	corr   any
}

// put sends a put-token with the given message-id and returns the answer.
func (c *cbsClient) put(t *testing.T, name, token string, msgID any) cbsReply {
	t.Helper()
	return c.request(t, iothub.CBSPutToken, iothub.CBSTokenTypeSAS, name, token, msgID)
}

func (c *cbsClient) request(t *testing.T, op, typ, name, token string, msgID any) cbsReply {
	t.Helper()
	ctx := within(t)
	replyTo := "cbs-reply"
	msg := &amqp.Message{
		Properties: &amqp.MessageProperties{MessageID: msgID, ReplyTo: &replyTo},
		ApplicationProperties: map[string]any{
			iothub.CBSOperation: op, iothub.CBSType: typ, iothub.CBSName: name,
		},
		Value: token,
	}
	if err := c.snd.Send(ctx, msg, nil); err != nil {
		t.Fatalf("sending put-token: %v", err)
	}
	r, err := c.rcv.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("waiting for the put-token answer: %v", err)
	}
	_ = c.rcv.AcceptMessage(ctx, r)
	st, ok := r.ApplicationProperties[iothub.CBSStatusCode].(int32)
	if !ok {
		t.Fatalf("status-code is %T %v, want an AMQP int", r.ApplicationProperties[iothub.CBSStatusCode], r.ApplicationProperties[iothub.CBSStatusCode])
	}
	desc, _ := r.ApplicationProperties[iothub.CBSStatusDescription].(string)
	return cbsReply{status: int(st), desc: desc, corr: r.Properties.CorrelationID}
}

// deviceName is the CBS name the Node SDK sends: the token's sr, encoded.
func deviceName(id iothub.Identity) string {
	return sas.Encode(sas.DeviceResource(testHost, id.DeviceID, id.ModuleID))
}

func moduleTok(id iothub.Identity, ttl time.Duration) string {
	return sas.Sign(sas.DeviceResource(testHost, id.DeviceID, id.ModuleID), sas.DeriveKey(groupKey, id.DeviceID), "", time.Now().Add(ttl))
}

// authDevice opens a session, puts the device's token and returns the
// session.
func authDevice(t *testing.T, c *amqp.Conn, id string) *amqp.Session {
	t.Helper()
	sess := newSession(t, c)
	r := newCBS(t, sess).put(t, deviceName(iothub.Identity{DeviceID: id}), devTok(id, time.Hour), "put-1")
	if r.status != 200 {
		t.Fatalf("put-token for %s: %d %s", id, r.status, r.desc)
	}
	return sess
}

// linkErr returns the AMQP error a refused attach or a detach carried.
func linkErr(err error) *amqp.Error {
	var le *amqp.LinkError
	if errors.As(err, &le) && le.RemoteErr != nil {
		return le.RemoteErr
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

func wantCondition(t *testing.T, what string, err error, cond amqp.ErrCond) {
	t.Helper()
	e := linkErr(err)
	if e == nil || e.Condition != cond {
		t.Fatalf("%s: got %v, want the condition %s", what, err, cond)
	}
}

// receive waits for one message.
func receive(t *testing.T, r *amqp.Receiver) *amqp.Message {
	t.Helper()
	m, err := r.Receive(within(t), nil)
	if err != nil {
		t.Fatalf("receiving on %s: %v", r.Address(), err)
	}
	return m
}

func ptr[T any](v T) *T { return &v }

// setAMQPOptions changes the AMQP front end's options for the connections
// made from now on.
func setAMQPOptions(s *Server, set func(*amqpOptions)) {
	s.amqp.mu.Lock()
	defer s.amqp.mu.Unlock()
	set(&s.amqp.opts)
}
