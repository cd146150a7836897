package amqp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/protocols"
)

// toWire maps a device message to the AMQP message IoT Hub reads, through the
// mapping the emulator shares (iothub.ToAMQP). Ids that are canonical uuids
// go as AMQP uuids, as the Node SDK sends them.
func toWire(m *iothub.Message) *goamqp.Message {
	a := iothub.ToAMQP(m)
	w := &goamqp.Message{Data: [][]byte{a.Body}}
	p := &goamqp.MessageProperties{MessageID: wireID(a.MessageID), CorrelationID: wireID(a.CorrelationID), UserID: a.UserID}
	if a.To != "" {
		p.To = &a.To
	}
	if a.ContentType != "" {
		p.ContentType = &a.ContentType
	}
	if a.ContentEncoding != "" {
		p.ContentEncoding = &a.ContentEncoding
	}
	if !a.AbsoluteExpiryTime.IsZero() {
		t := a.AbsoluteExpiryTime
		p.AbsoluteExpiryTime = &t
	}
	if p.MessageID != nil || p.CorrelationID != nil || p.UserID != nil || p.To != nil || p.ContentType != nil ||
		p.ContentEncoding != nil || p.AbsoluteExpiryTime != nil {
		w.Properties = p
	}
	if len(a.ApplicationProperties) > 0 {
		w.ApplicationProperties = make(map[string]any, len(a.ApplicationProperties))
		for _, ap := range a.ApplicationProperties {
			w.ApplicationProperties[ap.Name] = ap.Value
		}
	}
	if len(a.MessageAnnotations) > 0 {
		w.Annotations = make(goamqp.Annotations, len(a.MessageAnnotations))
		for _, ap := range a.MessageAnnotations {
			w.Annotations[ap.Name] = ap.Value
		}
	}
	return w
}

// wireID is the AMQP form of a message or correlation id: a uuid when the
// text is one in canonical lowercase form (so that the hub, which shows
// uuids that way, gives back the same text), else the string.
func wireID(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	if u, ok := parseUUID(s); ok {
		return u
	}
	return s
}

// parseUUID reads a uuid in canonical lowercase form.
func parseUUID(s string) (goamqp.UUID, bool) {
	var u goamqp.UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	hexDigits := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(u[:], []byte(hexDigits)); err != nil {
		return u, false
	}
	return u, u.String() == s
}

// wireBody is a message's body: its data sections joined, or an amqp-value
// holding binary or text.
func wireBody(w *goamqp.Message) ([]byte, error) {
	switch {
	case len(w.Data) == 1:
		return w.Data[0], nil
	case len(w.Data) > 1:
		return bytes.Join(w.Data, nil), nil
	case len(w.Sequence) > 0:
		return nil, fmt.Errorf("%w: an amqp-sequence body; IoT Hub sends data sections", iothub.ErrAMQPValue)
	case w.Value == nil:
		return nil, nil
	}
	if b, ok := w.Value.([]byte); ok {
		return b, nil
	}
	s, ok := iothub.AMQPValueText(w.Value)
	if !ok {
		return nil, fmt.Errorf("%w: an amqp-value body holding a %T", iothub.ErrAMQPValue, w.Value)
	}
	return []byte(s), nil
}

// fromWire maps an AMQP message from the hub to a Message through the shared
// mapping (iothub.FromAMQP). go-amqp hands sections over as Go maps, so
// properties and annotations come out sorted by name rather than in wire
// order, which keeps the result deterministic.
func fromWire(w *goamqp.Message) (*iothub.Message, error) {
	var a iothub.AMQPMessage
	if p := w.Properties; p != nil {
		a.MessageID, a.CorrelationID, a.UserID = p.MessageID, p.CorrelationID, p.UserID
		a.To, a.ContentType, a.ContentEncoding = deref(p.To), deref(p.ContentType), deref(p.ContentEncoding)
		if p.AbsoluteExpiryTime != nil {
			a.AbsoluteExpiryTime = *p.AbsoluteExpiryTime
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.ApplicationProperties)) {
		a.ApplicationProperties = append(a.ApplicationProperties, iothub.AMQPProperty{Name: k, Value: w.ApplicationProperties[k]})
	}
	for _, k := range annotationKeys(w.Annotations) {
		a.MessageAnnotations = append(a.MessageAnnotations, iothub.AMQPProperty{Name: k.name, Value: w.Annotations[k.key]})
	}
	body, err := wireBody(w)
	if err != nil {
		return nil, err
	}
	a.Body = body
	return iothub.FromAMQP(&a)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type annotationKey struct {
	key  any
	name string
}

// annotationKeys lists the keys of annotations sorted by their text; AMQP
// allows symbol and ulong keys.
func annotationKeys(a goamqp.Annotations) []annotationKey {
	keys := make([]annotationKey, 0, len(a))
	for k := range a {
		name, ok := iothub.AMQPValueText(k)
		if !ok {
			continue
		}
		keys = append(keys, annotationKey{k, name})
	}
	slices.SortFunc(keys, func(x, y annotationKey) int { return strings.Compare(x.name, y.name) })
	return keys
}

// annotation returns the annotation named name, whatever the Go type of its
// key.
func annotation(a goamqp.Annotations, name string) (any, bool) {
	if v, ok := a[name]; ok {
		return v, true
	}
	for k, v := range a {
		if s, ok := iothub.AMQPValueText(k); ok && s == name {
			return v, true
		}
	}
	return nil, false
}

// decodeC2D reads a cloud-to-device message: its properties through the
// shared mapping, and the lock token, delivery count and enqueued time from
// the hub's annotations (the lock token from the delivery tag when the
// annotation is missing, as the .NET SDK takes it). A message whose
// properties do not map is still delivered, with its body.
func decodeC2D(w *goamqp.Message) *protocols.C2DMessage {
	c := &protocols.C2DMessage{}
	if m, err := fromWire(w); err == nil {
		c.Message = *m
	} else if body, err := wireBody(w); err == nil {
		c.Message = iothub.Message{Body: body}
	}
	if v, ok := annotation(w.Annotations, iothub.AnnotationLockToken); ok {
		c.LockToken, _ = iothub.AMQPValueText(v)
	} else if len(w.DeliveryTag) == 16 {
		c.LockToken = goamqp.UUID(w.DeliveryTag).String()
	}
	if v, ok := annotation(w.Annotations, iothub.AnnotationDeliveryCount); ok {
		if n, ok := iothub.AMQPStatus(v); ok && n >= 0 {
			c.DeliveryCount = n
		}
	}
	for _, name := range []string{iothub.AnnotationEnqueuedTime, iothub.AnnotationHubEnqueuedTime} {
		if v, ok := annotation(w.Annotations, name); ok {
			if t, ok := v.(time.Time); ok {
				c.Enqueued = t.UTC()
				break
			}
		}
	}
	return c
}

// methodRequest is a direct-method call as the hub sends it.
type methodRequest struct {
	name    string
	corr    any // echoed as is: the hub correlates the answer by it
	payload []byte
}

// decodeMethod reads a direct-method call: its name, its correlation id
// (the hub sends a uuid) and its JSON payload.
func decodeMethod(w *goamqp.Message) (methodRequest, error) {
	var r methodRequest
	v, ok := w.ApplicationProperties[iothub.AMQPPropMethodName]
	if ok {
		r.name, ok = v.(string)
	}
	if !ok || r.name == "" {
		return r, fmt.Errorf("a method request without the %s application property", iothub.AMQPPropMethodName)
	}
	if w.Properties != nil {
		r.corr = w.Properties.CorrelationID
	}
	if _, err := iothub.AMQPIDString(r.corr); err != nil {
		return r, fmt.Errorf("method request %q: correlation-id: %w", r.name, err)
	}
	var err error
	if r.payload, err = wireBody(w); err != nil {
		return r, fmt.Errorf("method request %q: %w", r.name, err)
	}
	return r, nil
}

// twinMessage is what arrives on the twin receiver: an answer to a request
// (with its correlation id), or a desired-properties update (without).
type twinMessage struct {
	corr    string
	hasCorr bool
	status  int   // answers: the status annotation
	version int64 // the version annotation, or the patch's $version; -1 when neither
	body    []byte
}

// decodeTwin reads a message from the twin receiver.
func decodeTwin(w *goamqp.Message) (twinMessage, error) {
	t := twinMessage{version: -1}
	if w.Properties != nil && w.Properties.CorrelationID != nil {
		c, err := iothub.AMQPIDString(w.Properties.CorrelationID)
		if err != nil {
			return t, fmt.Errorf("twin message correlation-id: %w", err)
		}
		t.corr, t.hasCorr = c, true
	}
	body, err := wireBody(w)
	if err != nil {
		return t, fmt.Errorf("twin message: %w", err)
	}
	t.body = body
	if v, ok := annotation(w.Annotations, iothub.AnnotationVersion); ok {
		if n, ok := integer(v); ok {
			t.version = n
		}
	}
	if t.hasCorr {
		v, ok := annotation(w.Annotations, iothub.AnnotationStatus)
		if ok {
			t.status, ok = iothub.AMQPStatus(v)
		}
		if !ok {
			return t, fmt.Errorf("twin answer %q without an integer %s annotation", t.corr, iothub.AnnotationStatus)
		}
	} else if t.version < 0 {
		t.version = patchVersion(body)
	}
	return t, nil
}

// integer reads an AMQP integer of any width.
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
		return 0, false
	}
	n, ok := iothub.AMQPStatus(v)
	return int64(n), ok
}

// patchVersion is the "$version" of a desired-properties patch, -1 when it
// has none.
func patchVersion(body []byte) int64 {
	var v struct {
		Version *int64 `json:"$version"`
	}
	if json.Unmarshal(body, &v) != nil || v.Version == nil {
		return -1
	}
	return *v.Version
}

// cbsReply is the hub's answer to a put-token.
type cbsReply struct {
	corr   string
	status int
	desc   string
}

// decodeCBS reads an answer on the $cbs receiver: the request's message-id
// as correlation-id, and status-code and status-description.
func decodeCBS(w *goamqp.Message) (cbsReply, error) {
	var r cbsReply
	if w.Properties == nil || w.Properties.CorrelationID == nil {
		return r, errors.New("a CBS answer without a correlation-id")
	}
	var err error
	if r.corr, err = iothub.AMQPIDString(w.Properties.CorrelationID); err != nil {
		return r, fmt.Errorf("CBS answer correlation-id: %w", err)
	}
	v, ok := w.ApplicationProperties[iothub.CBSStatusCode]
	if ok {
		r.status, ok = iothub.AMQPStatus(v)
	}
	if !ok {
		return r, fmt.Errorf("CBS answer without an integer %s", iothub.CBSStatusCode)
	}
	r.desc, _ = iothub.AMQPValueText(w.ApplicationProperties[iothub.CBSStatusDescription])
	return r, nil
}

// statusError is the hub error an HTTP-like status of a CBS or twin answer
// stands for, read from the answer's body or description as the SDKs do.
func statusError(op string, status int, body []byte) *protocols.Error {
	// The twin answers errors as {"errorCode":400004,"message":"…"}; the
	// status says the code and the message the rest.
	var tw struct {
		ErrorCode *int    `json:"errorCode"`
		Message   *string `json:"message"`
	}
	if json.Unmarshal(body, &tw) == nil && tw.ErrorCode != nil && tw.Message != nil {
		body = []byte(*tw.Message)
	}
	he := iothub.ParseErrorBody(status, body)
	return &protocols.Error{Kind: protocols.KindOf(he.Code), Op: op, Err: fmt.Errorf("status %d: %w", status, he)}
}

// conditionCodes maps the AMQP error conditions IoT Hub uses to its error
// codes, from the table the emulator shares (iothub.ErrorCode.AMQPCondition).
// Several codes share a condition; the first listed here wins.
var conditionCodes = func() map[string]iothub.ErrorCode {
	m := map[string]iothub.ErrorCode{}
	for _, c := range []iothub.ErrorCode{
		iothub.CodeUnauthorized, iothub.CodeDeviceNotFound, iothub.CodeMessageTooLarge, iothub.CodeThrottled,
		iothub.CodeQueueFull, iothub.CodeQuotaExceeded, iothub.CodeGatewayTimeout, iothub.CodeArgumentInvalid,
		iothub.CodePreconditionFailed, iothub.CodeLockLost, iothub.CodeDeviceAlreadyExists, iothub.CodeServerError,
	} {
		if _, ok := m[c.AMQPCondition()]; !ok {
			m[c.AMQPCondition()] = c
		}
	}
	return m
}()

// condError is an AMQP error the hub sent: a rejected delivery, a refused
// attach, a detach or a close. It unwraps to the go-amqp error and, when the
// condition is one of IoT Hub's, to the hub error it stands for.
type condError struct {
	amqp *goamqp.Error
	hub  *iothub.Error
}

func (e *condError) Error() string {
	s := string(e.amqp.Condition)
	if e.amqp.Description != "" {
		s += ": " + e.amqp.Description
	}
	return s
}

func (e *condError) Unwrap() []error {
	if e.hub == nil {
		return []error{e.amqp}
	}
	return []error{e.hub, e.amqp}
}

// conditionKind classifies an AMQP error from the hub: by IoT Hub's code for
// the condition, and as a disconnect for the conditions that end a link or
// connection without blaming the device (stolen by a newer connection,
// detach-forced, connection forced).
func conditionKind(e *goamqp.Error) (protocols.Kind, *iothub.Error) {
	if code, ok := conditionCodes[string(e.Condition)]; ok {
		return protocols.KindOf(code), &iothub.Error{Code: code, Message: e.Description}
	}
	switch e.Condition {
	case goamqp.ErrCondStolen, goamqp.ErrCondDetachForced, goamqp.ErrCondConnectionForced:
		return protocols.KindDisconnected, nil
	}
	return protocols.KindOther, nil
}

// classifyErr makes a *protocols.Error of a go-amqp error. lost reports whether
// the error means the link, session or connection is gone.
func classifyErr(op string, err error) (pe *protocols.Error, lost bool) {
	if errors.As(err, &pe) {
		return pe, false
	}
	var (
		le     *goamqp.LinkError
		se     *goamqp.SessionError
		ce     *goamqp.ConnError
		ae     *goamqp.Error
		remote *goamqp.Error
	)
	switch {
	case errors.As(err, &le):
		remote, lost = le.RemoteErr, true
	case errors.As(err, &se):
		remote, lost = se.RemoteErr, true
	case errors.As(err, &ce):
		remote, lost = ce.RemoteErr, true
	case errors.As(err, &ae):
		remote = ae
	}
	if remote != nil {
		kind, he := conditionKind(remote)
		if lost && kind == protocols.KindOther {
			kind = protocols.KindDisconnected
		}
		return &protocols.Error{Kind: kind, Op: op, Err: &condError{amqp: remote, hub: he}}, lost
	}
	if lost {
		return &protocols.Error{Kind: protocols.KindDisconnected, Op: op, Err: err}, true
	}
	errors.As(protocols.Wrap(op, err), &pe)
	return pe, false
}

// ids hands out the uuids a client puts on the wire (container id, link
// names, channel and request correlation ids) from a generator seeded by the
// device's identity, so that a run's bytes repeat exactly.
type ids struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newIDs(identity string) *ids {
	h := fnv.New64a()
	h.Write([]byte(identity))
	return &ids{r: rand.New(rand.NewPCG(h.Sum64(), 0x616d7170))}
}

// uuid returns the next version-4-shaped uuid.
func (g *ids) uuid() goamqp.UUID {
	var u goamqp.UUID
	g.mu.Lock()
	binary.BigEndian.PutUint64(u[:8], g.r.Uint64())
	binary.BigEndian.PutUint64(u[8:], g.r.Uint64())
	g.mu.Unlock()
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}
