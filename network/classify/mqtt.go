package classify

import (
	"github.com/catmsim/catmsim/network"
)

// MQTT packet types (MQTT 3.1.1 §2.2.1).
const (
	mqttConnect     = 1
	mqttConnack     = 2
	mqttPublish     = 3
	mqttPuback      = 4
	mqttPubrec      = 5
	mqttPubrel      = 6
	mqttPubcomp     = 7
	mqttSubscribe   = 8
	mqttSuback      = 9
	mqttUnsubscribe = 10
	mqttUnsuback    = 11
	mqttPingreq     = 12
	mqttPingresp    = 13
	mqttDisconnect  = 14
)

// maxTopicBuf bounds the bytes kept to read a PUBLISH variable header: the
// 2-byte topic length, a topic of at most 65535 bytes and the packet id.
const maxTopicBuf = 2 + 65535 + 2

// MQTT classifies an MQTT 3.1.1 stream. The zero value is not usable; call
// NewMQTT.
type MQTT struct {
	rules []rule
	dir   [2]mqttDir
}

type mqttState uint8

const (
	mqttStFirst  mqttState = iota // expecting the fixed header's first byte
	mqttStLength                  // reading the remaining-length varint
	mqttStPrefix                  // reading the variable header needed to classify
	mqttStBody                    // streaming the rest of the packet
	mqttStDead                    // malformed length: the rest of the stream is other
)

type mqttDir struct {
	st        mqttState
	first     byte
	lenBytes  uint8
	remaining int // bytes of the packet after the fixed header not yet consumed
	need      int // variable-header bytes needed in pre before the class is known
	known     bool
	cls       network.Class
	held      int // bytes of the current packet consumed but not yet attributed
	pre       []byte
	// sent holds the class of every QoS 1/2 PUBLISH that travelled this way and
	// is not yet fully acknowledged.
	sent idTable
}

// NewMQTT returns a classifier for one MQTT 3.1.1 connection. Rules are tried
// before the IoT Hub topic table.
//
// CONNECT, CONNACK, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK and DISCONNECT are
// connect; PINGREQ and PINGRESP keepalive. A PUBLISH is classified by its topic:
// devices/{id}/messages/events/... and devices/{d}/modules/{m}/messages/events/...
// are telemetry, devices/{id}/messages/devicebound/... c2d, $iothub/twin/... twin,
// $iothub/methods/... method, anything else other. PUBACK, PUBREC and PUBCOMP take
// the class of the PUBLISH with their packet id that travelled the other way,
// PUBREL that of the PUBLISH that travelled its own way (it is sent by the
// publisher); an acknowledgement of an unknown packet id is other. A remaining
// length that does not end within 4 bytes makes the rest of that direction other.
//
// Memory: a fixed 32-entry packet-id table per direction (older in-flight ids
// are forgotten first), plus one reusable buffer per direction holding the
// longest topic seen (at most 64 KiB, the MQTT limit).
func NewMQTT(rules ...Rule) *MQTT {
	return &MQTT{rules: compileRules(rules)}
}

// Classify implements network.Classifier.
func (m *MQTT) Classify(dir network.Direction, p []byte, attribute func(c network.Class, n int)) {
	o := out{fn: attribute}
	if !validDir(dir) {
		o.add(network.ClassOther, len(p))
		o.flush()
		return
	}
	m.classify(dir, p, &o)
	o.flush()
}

// Flush implements Flusher.
func (m *MQTT) Flush(dir network.Direction, attribute func(c network.Class, n int)) {
	if !validDir(dir) {
		return
	}
	d := &m.dir[dir]
	if d.held > 0 {
		attribute(network.ClassOther, d.held)
		d.held = 0
	}
}

func (m *MQTT) pending(dir network.Direction) int { return m.dir[dir].held }

func (m *MQTT) classify(dir network.Direction, p []byte, o *out) {
	d := &m.dir[dir]
	for len(p) > 0 {
		switch d.st {
		case mqttStFirst:
			d.first = p[0]
			d.lenBytes, d.remaining = 0, 0
			d.pre = d.pre[:0]
			d.known, d.cls = typeClass(d.first >> 4)
			d.consume(o, 1)
			p = p[1:]
			d.st = mqttStLength

		case mqttStLength:
			b := p[0]
			d.remaining |= int(b&0x7f) << (7 * d.lenBytes)
			d.lenBytes++
			d.consume(o, 1)
			p = p[1:]
			if b&0x80 != 0 {
				if d.lenBytes == 4 {
					d.st = mqttStDead
				}
				continue
			}
			d.startBody(o)

		case mqttStPrefix:
			n := min(d.need-len(d.pre), len(p))
			d.pre = append(d.pre, p[:n]...)
			d.remaining -= n
			d.consume(o, n)
			p = p[n:]
			if len(d.pre) == d.need {
				m.prefixDone(dir, o)
			}

		case mqttStBody:
			n := min(d.remaining, len(p))
			d.remaining -= n
			d.consume(o, n)
			p = p[n:]
			if d.remaining == 0 {
				d.st = mqttStFirst
			}

		case mqttStDead:
			d.resolve(o, network.ClassOther)
			o.add(network.ClassOther, len(p))
			return
		}
	}
	if d.st == mqttStDead {
		d.resolve(o, network.ClassOther)
	}
}

// consume attributes n bytes of the current packet now if its class is known,
// or holds them until it is.
func (d *mqttDir) consume(o *out, n int) {
	if d.known {
		o.add(d.cls, n)
	} else {
		d.held += n
	}
}

// resolve fixes the current packet's class and releases the held bytes.
func (d *mqttDir) resolve(o *out, c network.Class) {
	d.known, d.cls = true, c
	o.add(c, d.held)
	d.held = 0
}

// startBody runs once the remaining length is known.
func (d *mqttDir) startBody(o *out) {
	typ := d.first >> 4
	switch {
	case d.known:
	case typ == mqttPublish:
		qos := (d.first >> 1) & 3
		d.need = 2
		if qos == 3 || d.remaining < d.need {
			d.resolve(o, network.ClassOther)
		}
	default: // PUBACK, PUBREC, PUBREL, PUBCOMP
		d.need = 2
		if d.remaining < d.need {
			d.resolve(o, network.ClassOther)
		}
	}
	switch {
	case d.remaining == 0:
		d.st = mqttStFirst
	case d.known:
		d.st = mqttStBody
	default:
		d.st = mqttStPrefix
	}
}

// prefixDone runs when the bytes asked for in need have arrived.
func (m *MQTT) prefixDone(dir network.Direction, o *out) {
	d := &m.dir[dir]
	typ := d.first >> 4
	if typ != mqttPublish {
		id := uint16(d.pre[0])<<8 | uint16(d.pre[1])
		var c network.Class
		var ok bool
		switch typ {
		case mqttPuback, mqttPubcomp:
			c, ok = m.dir[other(dir)].sent.take(id)
		case mqttPubrec:
			c, ok = m.dir[other(dir)].sent.get(id)
		case mqttPubrel:
			c, ok = d.sent.get(id)
		}
		if !ok {
			c = network.ClassOther
		}
		d.resolve(o, c)
		d.afterPrefix()
		return
	}
	qos := (d.first >> 1) & 3
	if len(d.pre) == 2 {
		topicLen := int(d.pre[0])<<8 | int(d.pre[1])
		d.need = 2 + topicLen
		if qos > 0 {
			d.need += 2
		}
		// The topic must fit in the packet; a packet that lies about it is other.
		if d.need-2 > d.remaining {
			d.resolve(o, network.ClassOther)
			d.afterPrefix()
			return
		}
		if len(d.pre) < d.need {
			return
		}
	}
	topic := d.pre[2 : len(d.pre)-2*int(min(qos, 1))]
	c, ok := classifyByRules(m.rules, dir, nil, topic)
	if !ok {
		c = mqttTopicClass(topic)
	}
	if qos > 0 {
		n := len(d.pre)
		d.sent.put(uint16(d.pre[n-2])<<8|uint16(d.pre[n-1]), c)
	}
	d.resolve(o, c)
	d.afterPrefix()
}

func (d *mqttDir) afterPrefix() {
	if d.remaining == 0 {
		d.st = mqttStFirst
	} else {
		d.st = mqttStBody
	}
}

// typeClass returns the class a packet type decides by itself; known is false
// for PUBLISH and the acknowledgements, which need their variable header.
func typeClass(typ byte) (known bool, c network.Class) {
	switch typ {
	case mqttConnect, mqttConnack, mqttSubscribe, mqttSuback, mqttUnsubscribe, mqttUnsuback, mqttDisconnect:
		return true, network.ClassConnect
	case mqttPingreq, mqttPingresp:
		return true, network.ClassKeepAlive
	case mqttPublish, mqttPuback, mqttPubrec, mqttPubrel, mqttPubcomp:
		return false, 0
	}
	return true, network.ClassOther // reserved types 0 and 15
}

// mqttTopicClass classifies an IoT Hub topic (spec §2.5).
func mqttTopicClass(t []byte) network.Class {
	if c, ok := iothubPath(t); ok && (c == network.ClassTelemetry || c == network.ClassC2D) {
		return c
	}
	s, rest, _ := cutSeg(t)
	if string(s) == "$iothub" {
		s, _, _ = cutSeg(rest)
		switch string(s) {
		case "twin":
			return network.ClassTwin
		case "methods":
			return network.ClassMethod
		}
	}
	return network.ClassOther
}

// idTable maps packet ids of in-flight publishes to their class. It is a fixed
// array searched linearly: IoT devices keep a handful of messages in flight,
// and a table that never grows keeps the per-connection memory bound fixed.
type idTable struct {
	ids  [32]uint16
	cls  [32]network.Class
	used uint32
	next uint8
}

func (t *idTable) find(id uint16) int {
	for i := range t.ids {
		if t.used&(1<<i) != 0 && t.ids[i] == id {
			return i
		}
	}
	return -1
}

func (t *idTable) put(id uint16, c network.Class) {
	i := t.find(id)
	if i < 0 {
		for j := range t.ids {
			if t.used&(1<<j) == 0 {
				i = j
				break
			}
		}
	}
	if i < 0 { // full: forget the slot after the one replaced last
		i = int(t.next)
		t.next = (t.next + 1) % uint8(len(t.ids))
	}
	t.ids[i], t.cls[i] = id, c
	t.used |= 1 << i
}

func (t *idTable) get(id uint16) (network.Class, bool) {
	if i := t.find(id); i >= 0 {
		return t.cls[i], true
	}
	return network.ClassOther, false
}

func (t *idTable) take(id uint16) (network.Class, bool) {
	i := t.find(id)
	if i < 0 {
		return network.ClassOther, false
	}
	t.used &^= 1 << i
	return t.cls[i], true
}
