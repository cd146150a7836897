package hub

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/catmsim/catmsim/internal/iothub"
)

// mqttC2DWindow is how many cloud-to-device messages the emulator has in flight
// to one MQTT device before it waits for PUBACKs. IoT Hub does not document its
// figure (spec §10.4).
const mqttC2DWindow = 5

// mqttMaxPacket bounds what the emulator reads as one MQTT packet. IoT Hub's
// limit is on the message (256 KB, iothub.MaxD2CSize), checked with its own
// error; this only keeps a hostile length from costing memory.
const mqttMaxPacket = 512 * 1024

// mqttMaxQueued bounds the packets waiting for a slow MQTT device; a device that
// falls further behind is disconnected rather than buffered without limit.
const mqttMaxQueued = 1024

// mqttFront is the MQTT 3.1.1 front end: mochi-mqtt's broker with hooks that
// make it behave as IoT Hub, fed connections from every listener (TLS, memnet,
// WebSocket) through EstablishConnection.
type mqttFront struct {
	mochi.HookBase
	h   *Hub
	srv *mochi.Server

	mu       sync.Mutex
	sessions map[*mochi.Client]*mqttSession
	pending  map[net.Conn]mqttPending // accepted connections awaiting CONNECT
	writers  sync.WaitGroup
}

// mqttPending is what the front end knows of a connection before CONNECT.
type mqttPending struct {
	proto Protocol
	certs []*x509.Certificate
}

// mqttSession is one authenticated MQTT connection.
type mqttSession struct {
	f    *mqttFront
	cl   *mochi.Client
	conn *Conn
	id   iothub.Identity

	mu      sync.Mutex
	nextPID uint16
	c2d     map[uint16]string // packet id → lock token of an unacknowledged C2D message
	subs    map[string]bool   // filters held
	queue   []packets.Packet  // waiting for the writer
	writing bool
	broken  bool
	// will is the CONNECT's last will, sent once unless the device says
	// DISCONNECT. mochi publishes a will only when its read loop sees the
	// error, which a session takeover can race past; the hub publishes it on
	// every close that was not a DISCONNECT, so the front keeps it itself.
	will     *iothub.Message
	willDone bool
}

// sendWill stores the last will as telemetry marked iothub-MessageType=Will,
// at most once per connection.
func (s *mqttSession) sendWill() {
	s.mu.Lock()
	m := s.will
	done := s.willDone
	s.willDone = true
	s.mu.Unlock()
	if m == nil || done {
		return
	}
	_ = s.f.h.Accept(s.conn.Principal(), s.conn.Protocol(), m)
}

func newMQTTFront(h *Hub) (*mqttFront, error) {
	f := &mqttFront{h: h, sessions: map[*mochi.Client]*mqttSession{}, pending: map[net.Conn]mqttPending{}}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumQos = 1 // a SUBSCRIBE asking for QoS 2 is granted QoS 1, as by the hub
	caps.MaximumPacketSize = mqttMaxPacket
	caps.RetainAvailable = 1 // RETAIN is taken off in OnPacketRead, never stored
	caps.MinimumProtocolVersion = 3
	// mochi gives every client an outbound channel of this many slots for
	// broker-routed publishes; the emulator routes nothing through it (it writes
	// through mqttSession.send), and the default of 8192 slots costs 64 KB per
	// connection.
	caps.MaximumClientWritesPending = 16
	f.srv = mochi.New(&mochi.Options{
		Capabilities:             caps,
		Logger:                   slog.New(slog.DiscardHandler),
		SysTopicResendInterval:   3600,
		ClientNetReadBufferSize:  1024,
		ClientNetWriteBufferSize: 1024,
	})
	if err := f.srv.AddHook(f, nil); err != nil {
		return nil, err
	}
	if err := f.srv.Serve(); err != nil {
		return nil, err
	}
	return f, nil
}

// serve runs one MQTT connection until it ends. certs are the TLS client
// certificates the device presented, if any.
func (f *mqttFront) serve(c net.Conn, proto Protocol, certs []*x509.Certificate) {
	f.mu.Lock()
	f.pending[c] = mqttPending{proto: proto, certs: certs}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.pending, c)
		f.mu.Unlock()
	}()
	_ = f.srv.EstablishConnection(string(proto), c)
}

func (f *mqttFront) close() {
	_ = f.srv.Close()
	f.writers.Wait()
}

// ID names the hook.
func (f *mqttFront) ID() string { return "iothub" }

// Provides lists the hooks the emulator uses.
func (f *mqttFront) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mochi.OnConnect, mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnSessionEstablished,
		mochi.OnDisconnect, mochi.OnPacketRead, mochi.OnSubscribed, mochi.OnUnsubscribed, mochi.OnWill,
	}, []byte{b})
}

// OnConnect is where IoT Hub's CONNECT rules apply: protocol 3.1.1, client id =
// device id (or device/module), a username naming this hub and the client id,
// and a SAS token password or a client certificate. A refusal is answered with
// the CONNACK code the hub uses (spec §2.3) before the connection closes.
func (f *mqttFront) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	f.mu.Lock()
	pend, ok := f.pending[cl.Net.Conn]
	f.mu.Unlock()
	if !ok {
		return errors.New("connection not accepted by the emulator")
	}
	refuse := func(code packets.Code, why error) error {
		_ = f.srv.SendConnack(cl, code, false, nil)
		f.h.log.Info("MQTT CONNECT refused", "client", cl.ID, "protocol", string(pend.proto), "reason", why.Error())
		return why
	}
	if pk.ProtocolVersion != 4 {
		return refuse(packets.Err3UnsupportedProtocolVersion, fmt.Errorf("MQTT protocol level %d: IoT Hub speaks MQTT 3.1.1 (level 4)", pk.ProtocolVersion))
	}
	id, err := iothub.ParseClientID(pk.Connect.ClientIdentifier)
	if err != nil {
		return refuse(packets.Err3ClientIdentifierNotValid, err)
	}
	u, err := iothub.ParseUsername(string(pk.Connect.Username), pk.Connect.ClientIdentifier)
	if err != nil {
		return refuse(packets.ErrMalformedUsernameOrPassword, err)
	}
	if !strings.EqualFold(u.Host, f.h.HostName()) {
		return refuse(packets.ErrMalformedUsernameOrPassword, fmt.Errorf("username names hub %q; this hub is %q", u.Host, f.h.HostName()))
	}
	if pk.Connect.WillFlag {
		wp, err := iothub.ParseDevicePublish(pk.Connect.WillTopic)
		if err != nil || wp.Kind != iothub.TopicTelemetry || wp.Identity != id {
			return refuse(packets.Err3NotAuthorized, fmt.Errorf("will topic %q is not this device's telemetry topic", pk.Connect.WillTopic))
		}
	}
	p, err := f.h.Authenticate(id, Credentials{Token: string(pk.Connect.Password), Certs: pend.certs})
	if err != nil {
		return refuse(packets.Err3NotAuthorized, err)
	}
	// The hub closes a silent connection at 1.5 × keep-alive, capped at 1767 s;
	// mochi closes at 1.5 × State.Keepalive, so the cap is applied there.
	capKA := uint16(iothub.MaxMQTTIdle / time.Second * 2 / 3)
	if cl.State.Keepalive == 0 || cl.State.Keepalive > capKA {
		cl.State.Keepalive = capKA
	}
	s := &mqttSession{f: f, cl: cl, id: id, c2d: map[uint16]string{}, subs: map[string]bool{}}
	if pk.Connect.WillFlag {
		wp, _ := iothub.ParseDevicePublish(pk.Connect.WillTopic)
		m := &iothub.Message{Body: append([]byte(nil), pk.Connect.WillPayload...)}
		if err := iothub.DecodeBag(wp.Bag, m); err != nil {
			return refuse(packets.Err3NotAuthorized, fmt.Errorf("will topic %q: %w", pk.Connect.WillTopic, err))
		}
		m.Set(iothub.PropMessageType, "Will")
		s.will = m
	}
	conn, err := f.h.Connect(p, pend.proto, cl.Net.Remote, func(reason error) { cl.Stop(reason) })
	if err != nil {
		return refuse(packets.Err3ServerUnavailable, err)
	}
	s.conn = conn
	f.mu.Lock()
	f.sessions[cl] = s
	f.mu.Unlock()
	return nil
}

// OnConnectAuthenticate admits exactly the clients OnConnect accepted.
func (f *mqttFront) OnConnectAuthenticate(cl *mochi.Client, _ packets.Packet) bool {
	return f.session(cl) != nil
}

// OnACLCheck allows everything mochi asks about: topics are checked, with IoT
// Hub's answer (a closed connection), in OnPacketRead.
func (f *mqttFront) OnACLCheck(*mochi.Client, string, bool) bool { return true }

func (f *mqttFront) session(cl *mochi.Client) *mqttSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[cl]
}

// OnSessionEstablished resumes a persistent session: subscriptions kept from a
// CleanSession=0 connection start their pushes again, so C2D messages queued
// while the device was away are delivered on reconnect.
func (f *mqttFront) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) {
	s := f.session(cl)
	if s == nil {
		return
	}
	for _, sub := range cl.State.Subscriptions.GetAll() {
		s.subscribe(sub.Filter)
	}
}

// OnDisconnect releases the device's hub connection.
func (f *mqttFront) OnDisconnect(cl *mochi.Client, err error, _ bool) {
	f.mu.Lock()
	s := f.sessions[cl]
	delete(f.sessions, cl)
	f.mu.Unlock()
	if s != nil {
		s.sendWill()
		s.conn.Close()
		f.h.log.Info("MQTT connection closed", "identity", s.id.String(), "error", fmt.Sprint(err))
	}
}

// OnWill turns a last will into telemetry with iothub-MessageType=Will, as the
// hub does on an ungraceful close; mochi's own will handling then has no
// subscriber to deliver it to, and it is never retained. OnDisconnect sends it
// too, for the closes mochi's read loop misses.
func (f *mqttFront) OnWill(cl *mochi.Client, will mochi.Will) (mochi.Will, error) {
	if s := f.session(cl); s != nil {
		s.sendWill()
	}
	will.Retain = false
	return will, nil
}

// errHubClosed is how OnPacketRead makes mochi drop a connection: IoT Hub
// answers protocol violations by closing the network connection (D-MQTT).
type errHubClosed struct{ reason string }

func (e errHubClosed) Error() string { return "IoT Hub closes the connection: " + e.reason }

// Unwrap makes mochi end the connection: it drops a client whose packet a hook
// rejects with packets.ErrRejectPacket and ignores other hook errors.
func (e errHubClosed) Unwrap() error { return packets.ErrRejectPacket }

// OnPacketRead applies IoT Hub's rules to every packet before mochi handles it.
func (f *mqttFront) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	s := f.session(cl)
	if s == nil {
		return pk, nil
	}
	switch pk.FixedHeader.Type {
	case packets.Disconnect:
		s.mu.Lock()
		s.willDone = true // a graceful close: no will
		s.mu.Unlock()
	case packets.Publish:
		return s.publish(pk)
	case packets.Subscribe:
		for _, sub := range pk.Filters {
			if !iothub.FilterAllowed(s.id, sub.Filter) {
				return pk, s.violation(fmt.Sprintf("subscribe to %q, which is not one of %s's topics", sub.Filter, s.id))
			}
		}
		s.mu.Lock()
		n := len(s.subs)
		for _, sub := range pk.Filters {
			if !s.subs[sub.Filter] {
				n++
			}
		}
		s.mu.Unlock()
		if n > iothub.MaxSubscriptions {
			return pk, s.violation(fmt.Sprintf("%d subscriptions; IoT Hub allows %d", n, iothub.MaxSubscriptions))
		}
	case packets.Puback:
		s.mu.Lock()
		lock, ok := s.c2d[pk.PacketID]
		delete(s.c2d, pk.PacketID)
		s.mu.Unlock()
		if ok {
			// PUBACK is complete: MQTT devices cannot reject or abandon (D-C2D).
			if err := s.conn.SettleC2D(lock, Complete); err != nil {
				f.h.log.Info("late C2D acknowledgement", "identity", s.id.String(), "error", err.Error())
			}
		}
	case packets.Pingreq:
		s.conn.Touch()
	}
	return pk, nil
}

func (s *mqttSession) violation(reason string) error {
	s.f.h.reject(s.id, s.conn.Protocol(), iothub.Errorf(iothub.CodeArgumentInvalid, "%s", reason))
	return errHubClosed{reason}
}

// publish handles a PUBLISH from the device. Telemetry is stored before mochi
// sends the PUBACK, so a PUBACK means the hub accepted the message.
func (s *mqttSession) publish(pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos > 1 {
		return pk, s.violation("PUBLISH at QoS 2, which IoT Hub does not support")
	}
	dp, err := iothub.ParseDevicePublish(pk.TopicName)
	if err != nil {
		return pk, s.violation(err.Error())
	}
	switch dp.Kind {
	case iothub.TopicTelemetry:
		if dp.Identity != s.id {
			return pk, s.violation(fmt.Sprintf("publish to %s's topic %q", dp.Identity, pk.TopicName))
		}
		m := &iothub.Message{Body: append([]byte(nil), pk.Payload...)}
		if err := iothub.DecodeBag(dp.Bag, m); err != nil {
			return pk, s.violation(err.Error())
		}
		if pk.FixedHeader.Retain {
			// Not stored: forwarded with mqtt-retain=true (D-MQTT).
			m.Set(iothub.PropMQTTRetain, "true")
			pk.FixedHeader.Retain = false
		}
		if err := s.conn.Telemetry(m); err != nil {
			// MQTT has no negative PUBACK: too large, throttled or
			// unauthorized telemetry closes the connection.
			return pk, errHubClosed{err.Error()}
		}
	case iothub.TopicTwinGet:
		doc, err := s.conn.GetTwin()
		if err != nil {
			s.twinError(dp.RID, err)
			break
		}
		s.reply(iothub.TwinResponseTopic(200, dp.RID, 0), doc)
	case iothub.TopicTwinPatchReported:
		v, err := s.conn.PatchReported(pk.Payload)
		if err != nil {
			s.twinError(dp.RID, err)
			break
		}
		s.reply(iothub.TwinResponseTopic(204, dp.RID, v), nil)
	case iothub.TopicMethodResponse:
		if err := s.conn.MethodResponse(dp.RID, dp.Status, pk.Payload); err != nil {
			s.f.h.log.Info("method response ignored", "identity", s.id.String(), "error", err.Error())
		}
	}
	// Nothing a device publishes is routed to other MQTT subscribers; an
	// emptied topic-less copy would fail mochi's checks, so the packet goes on
	// with its topic, which no client can subscribe to.
	return pk, nil
}

// twinError answers a failed twin request with the hub's status on the
// response topic.
func (s *mqttSession) twinError(rid string, err error) {
	code := iothub.CodeServerError
	var e *iothub.Error
	if errors.As(err, &e) {
		code = e.Code
	}
	body := []byte(`{"errorCode":` + strconv.Itoa(code.Number()) + `,"message":` + strconv.Quote(err.Error()) + `}`)
	status := code.HTTPStatus()
	s.reply(iothub.TwinResponseTopic(status, rid, 0), body)
}

// reply sends a QoS 0 publish on an $iothub response topic, if the device is
// subscribed to it; without the subscription the hub has nowhere to send it.
func (s *mqttSession) reply(topic string, payload []byte) {
	if !s.subscribed(iothub.TwinResponseFilter) {
		return
	}
	s.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: payload})
}

func (s *mqttSession) subscribed(filter string) bool {
	_, ok := s.cl.State.Subscriptions.Get(filter)
	return ok
}

// OnSubscribed starts the hub pushes a new subscription asks for.
func (f *mqttFront) OnSubscribed(cl *mochi.Client, pk packets.Packet, _ []byte) {
	if s := f.session(cl); s != nil {
		for _, sub := range pk.Filters {
			s.subscribe(sub.Filter)
		}
	}
}

// OnUnsubscribed stops them.
func (f *mqttFront) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	s := f.session(cl)
	if s == nil {
		return
	}
	for _, sub := range pk.Filters {
		s.mu.Lock()
		delete(s.subs, sub.Filter)
		s.mu.Unlock()
		switch sub.Filter {
		case iothub.C2DFilter(s.id.DeviceID):
			s.conn.UnsubscribeC2D()
		case iothub.MethodsFilter:
			s.conn.SubscribeMethods(nil)
		case iothub.DesiredFilter:
			s.conn.UnsubscribeDesired()
		}
	}
}

func (s *mqttSession) subscribe(filter string) {
	s.mu.Lock()
	s.subs[filter] = true
	s.mu.Unlock()
	switch filter {
	case iothub.C2DFilter(s.id.DeviceID):
		s.conn.SubscribeC2D(mqttC2DWindow, s.deliverC2D)
	case iothub.MethodsFilter:
		s.conn.SubscribeMethods(func(r MethodRequest) {
			s.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: iothub.MethodRequestTopic(r.Name, r.RID), Payload: r.Payload})
		})
	case iothub.DesiredFilter:
		s.conn.SubscribeDesired(func(patch []byte, version int64) {
			s.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: iothub.DesiredPatchTopic(version), Payload: patch})
		})
	}
}

// deliverC2D publishes a cloud-to-device message at QoS 1; its PUBACK completes
// it.
func (s *mqttSession) deliverC2D(m *C2DMessage) {
	msg := m.Message
	if m.Ack != "" && m.Ack != "none" {
		msg.Properties = append([]iothub.Property{{Name: iothub.PropAck, Value: m.Ack}}, msg.Properties...)
	}
	s.mu.Lock()
	pid := s.nextFreePID()
	s.c2d[pid] = m.LockToken
	s.mu.Unlock()
	s.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   iothub.C2DTopic(s.id.DeviceID, &msg),
		Payload:     m.Body,
		PacketID:    pid,
	})
}

// nextFreePID returns a packet id not in use by an unacknowledged C2D message;
// s.mu is held.
func (s *mqttSession) nextFreePID() uint16 {
	for {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		if _, used := s.c2d[s.nextPID]; !used {
			return s.nextPID
		}
	}
}

// send queues a packet for the device. The hub calls it from its own
// goroutines, which must not wait on a device's slow link, so a writer
// goroutine drains the queue while it is not empty and ends when it is.
func (s *mqttSession) send(pk packets.Packet) {
	s.mu.Lock()
	if s.broken {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= mqttMaxQueued {
		s.broken = true
		s.mu.Unlock()
		s.cl.Stop(fmt.Errorf("the device fell %d packets behind", mqttMaxQueued))
		return
	}
	s.queue = append(s.queue, pk)
	if s.writing {
		s.mu.Unlock()
		return
	}
	s.writing = true
	s.f.writers.Add(1)
	s.mu.Unlock()
	go s.drain()
}

func (s *mqttSession) drain() {
	defer s.f.writers.Done()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.broken {
			s.queue = nil
			s.writing = false
			s.mu.Unlock()
			return
		}
		pk := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		if err := s.cl.WritePacket(pk); err != nil {
			s.mu.Lock()
			s.broken = true
			s.mu.Unlock()
		}
	}
}
