package iothub

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AMQPNode is what an AMQP link address names (spec §3.2 link table, §5.1).
type AMQPNode int

const (
	AMQPNodeUnknown AMQPNode = iota
	// AMQPNodeCBS is $cbs, where put-token requests go and answers come from.
	AMQPNodeCBS
	// AMQPNodeEvents is /devices/{d}[/modules/{m}]/messages/events: telemetry
	// when the device sends; a module's inputs when it receives (Edge).
	AMQPNodeEvents
	// AMQPNodeDeviceBound is /devices/{d}/messages/deviceBound, where a device
	// receives cloud-to-device messages.
	AMQPNodeDeviceBound
	// AMQPNodeMethods is /devices/{d}[/modules/{m}]/methods/devicebound, the
	// pair of links that carry direct-method calls and their answers.
	AMQPNodeMethods
	// AMQPNodeTwin is /devices/{d}[/modules/{m}]/twin, the pair of links that
	// carry twin requests, their answers and desired-property updates.
	AMQPNodeTwin
	// AMQPNodeServiceDeviceBound is /messages/devicebound, where the service
	// sends cloud-to-device messages (each names its device in "to").
	AMQPNodeServiceDeviceBound
	// AMQPNodeServiceFeedback is /messages/serviceBound/feedback, where the
	// service receives delivery feedback for its C2D messages.
	AMQPNodeServiceFeedback
	// AMQPNodeServiceFileNotifications is
	// /messages/serviceBound/filenotifications (file uploads).
	AMQPNodeServiceFileNotifications
)

func (n AMQPNode) String() string {
	switch n {
	case AMQPNodeCBS:
		return "cbs"
	case AMQPNodeEvents:
		return "events"
	case AMQPNodeDeviceBound:
		return "devicebound"
	case AMQPNodeMethods:
		return "methods"
	case AMQPNodeTwin:
		return "twin"
	case AMQPNodeServiceDeviceBound:
		return "service devicebound"
	case AMQPNodeServiceFeedback:
		return "service feedback"
	case AMQPNodeServiceFileNotifications:
		return "service file notifications"
	}
	return "unknown"
}

// AMQPCBSAddress is the address of the claims-based security node.
const AMQPCBSAddress = "$cbs"

// AMQPAddress is a parsed AMQP link address.
type AMQPAddress struct {
	Node     AMQPNode
	Identity Identity // for device nodes: the device, or the device's module
	// Host is the host of an absolute address (amqps://{host}/…, as the .NET
	// and C SDKs send); empty for a path.
	Host string
}

// ParseAMQPAddress parses a link address in either form the SDKs use: a path
// (Node: /devices/{id}/messages/events) or an absolute URI (.NET and C:
// amqps://{host}/devices/{urlencoded id}/messages/events). Fixed segments
// compare case-insensitively (deviceBound and devicebound are one node), ids
// are percent-decoded, and a query string is ignored. An id whose escapes are
// broken (a literal '%' sent unencoded, which the Node SDK does) is taken as
// sent.
func ParseAMQPAddress(addr string) (AMQPAddress, error) {
	var a AMQPAddress
	rest := addr
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
		host, path, _ := strings.Cut(rest, "/")
		if host == "" {
			return a, fmt.Errorf("link address %q has no host after the scheme", clip(addr))
		}
		a.Host, rest = host, path
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest = strings.Trim(rest, "/")
	if rest == AMQPCBSAddress {
		a.Node = AMQPNodeCBS
		return a, nil
	}
	segs := strings.Split(rest, "/")
	word := func(i int, w string) bool { return i < len(segs) && strings.EqualFold(segs[i], w) }
	switch {
	case len(segs) == 2 && word(0, "messages") && word(1, "devicebound"):
		a.Node = AMQPNodeServiceDeviceBound
		return a, nil
	case len(segs) == 3 && word(0, "messages") && word(1, "servicebound") && word(2, "feedback"):
		a.Node = AMQPNodeServiceFeedback
		return a, nil
	case len(segs) == 3 && word(0, "messages") && word(1, "servicebound") && word(2, "filenotifications"):
		a.Node = AMQPNodeServiceFileNotifications
		return a, nil
	case len(segs) >= 3 && word(0, "devices"):
	default:
		return a, fmt.Errorf("link address %q is not an IoT Hub node ($cbs, /devices/{id}/…, /messages/devicebound or /messages/serviceBound/feedback)", clip(addr))
	}
	dev, err := addressID(segs[1])
	if err != nil {
		return a, fmt.Errorf("link address %q: device %w", clip(addr), err)
	}
	a.Identity.DeviceID = dev
	tail := segs[2:]
	if len(tail) >= 2 && strings.EqualFold(tail[0], "modules") {
		mod, err := addressID(tail[1])
		if err != nil {
			return a, fmt.Errorf("link address %q: module %w", clip(addr), err)
		}
		a.Identity.ModuleID = mod
		tail = tail[2:]
	}
	is := func(words ...string) bool {
		if len(tail) != len(words) {
			return false
		}
		for i, w := range words {
			if !strings.EqualFold(tail[i], w) {
				return false
			}
		}
		return true
	}
	switch {
	case is("messages", "events"):
		a.Node = AMQPNodeEvents
	case is("messages", "devicebound") && a.Identity.ModuleID == "":
		a.Node = AMQPNodeDeviceBound
	case is("methods", "devicebound"):
		a.Node = AMQPNodeMethods
	case is("twin"):
		a.Node = AMQPNodeTwin
	default:
		return AMQPAddress{}, fmt.Errorf("link address %q is not a device node (messages/events, messages/deviceBound, methods/devicebound or twin)", clip(addr))
	}
	return a, nil
}

// addressID percent-decodes one id segment and checks it.
func addressID(seg string) (string, error) {
	id, ok := unescape(seg)
	if !ok || ValidateID(id) != nil {
		id = seg
	}
	if err := ValidateID(id); err != nil {
		return "", err
	}
	return id, nil
}

// AMQPPath is the link address of a device node in the path form the Node
// SDK uses (ids percent-encoded, which the hub decodes). Service nodes ignore
// id.
func AMQPPath(n AMQPNode, id Identity) string {
	p := "/devices/" + escape(id.DeviceID)
	if id.ModuleID != "" {
		p += "/modules/" + escape(id.ModuleID)
	}
	switch n {
	case AMQPNodeCBS:
		return AMQPCBSAddress
	case AMQPNodeEvents:
		return p + "/messages/events"
	case AMQPNodeDeviceBound:
		return p + "/messages/devicebound"
	case AMQPNodeMethods:
		return p + "/methods/devicebound"
	case AMQPNodeTwin:
		return p + "/twin"
	case AMQPNodeServiceDeviceBound:
		return "/messages/devicebound"
	case AMQPNodeServiceFeedback:
		return "/messages/serviceBound/feedback"
	case AMQPNodeServiceFileNotifications:
		return "/messages/serviceBound/filenotifications"
	}
	return ""
}

// AMQPC2DTo is the "to" of a cloud-to-device message: what the service sets to
// name the device (Node service SDK: /devices/{urlencoded id}/messages/devicebound)
// and what the hub sets on the message it delivers.
func AMQPC2DTo(deviceID string) string {
	return "/devices/" + escape(deviceID) + "/messages/deviceBound"
}

// Names on the $cbs node (spec §3.3). The request's application properties
// carry operation, type and name; the answer's carry status-code (an AMQP
// int) and status-description.
const (
	CBSOperation         = "operation"
	CBSType              = "type"
	CBSName              = "name"
	CBSExpiration        = "expiration"
	CBSStatusCode        = "status-code"
	CBSStatusDescription = "status-description"
	CBSPutToken          = "put-token"
	CBSDeleteToken       = "delete-token"
	// CBSTokenTypeSAS is the token type every SDK sends with a SAS token.
	CBSTokenTypeSAS = "servicebus.windows.net:sastoken"
	// CBSReplyTo is the reply-to the Node and C SDKs put on requests.
	CBSReplyTo = "cbs"
)

// IsCBSSASType reports whether a put-token type names a SAS token: the SDKs'
// servicebus.windows.net:sastoken, and the older azure-devices.net:sastoken.
func IsCBSSASType(t string) bool { return strings.HasSuffix(t, ":sastoken") }

// Link attach properties (symbol keys, string values; spec §3.2).
const (
	LinkPropClientVersion        = "com.microsoft:client-version"
	LinkPropAPIVersion           = "com.microsoft:api-version"
	LinkPropChannelCorrelationID = "com.microsoft:channel-correlation-id"
	LinkPropModelID              = "com.microsoft:model-id"
	LinkPropAuthChain            = "com.microsoft:auth-chain"
	LinkPropTimeout              = "com.microsoft:timeout"
)

// Application properties with a meaning on AMQP (spec §3.4, §3.6): the direct
// method's name on a request and the device's status on its answer (an AMQP
// int), and the system properties .NET sends as application properties.
const (
	AMQPPropMethodName    = "IoThub-methodname"
	AMQPPropMethodStatus  = "IoThub-status"
	AMQPPropCreationTime  = "iothub-creation-time-utc"
	AMQPPropMessageSchema = "iothub-message-schema"
	AMQPPropOutputName    = "iothub-outputname"
)

// Message annotations (symbol keys) the hub and the SDKs read (spec §3.4, §3.5,
// §3.7).
const (
	AnnotationInterfaceID      = "iothub-interface-id"
	AnnotationComponentName    = "dt-subject"
	AnnotationSequenceNumber   = "x-opt-sequence-number" // ulong
	AnnotationEnqueuedTime     = "x-opt-enqueued-time"   // timestamp
	AnnotationHubEnqueuedTime  = "iothub-enqueuedtime"   // timestamp
	AnnotationDeliveryCount    = "iothub-deliverycount"  // ubyte
	AnnotationLockToken        = "x-opt-lock-token"      // uuid
	AnnotationInputName        = "x-opt-input-name"
	AnnotationConnectionDevice = "iothub-connection-device-id"
	AnnotationConnectionModule = "iothub-connection-module-id"
	// Twin requests carry operation and resource; answers carry status (an
	// AMQP int) and, after a reported-properties patch, version (an AMQP long).
	AnnotationOperation = "operation"
	AnnotationResource  = "resource"
	AnnotationStatus    = "status"
	AnnotationVersion   = "version"
)

// Twin operations and resources on the twin link (spec §3.7).
const (
	TwinOpGet    = "GET"
	TwinOpPatch  = "PATCH"
	TwinOpPut    = "PUT"
	TwinOpDelete = "DELETE"

	TwinResourceReported = "/properties/reported"
	TwinResourceDesired  = "/notifications/twin/properties/desired"
)

// ContentTypeFeedback is the content type of the hub's C2D feedback batches.
const ContentTypeFeedback = "application/vnd.microsoft.iothub.feedback.json"

// AMQPBatchFormat is the transfer message-format of a batch: each data section
// of the message is itself a whole encoded message (spec §3.4).
const AMQPBatchFormat uint32 = 0x80013700

// SASLPlainUser is a SASL PLAIN username in one of the forms of D-AMQP:
// {deviceId}@sas.{hubName} for a device and {policyName}@sas.root.{hubName}
// for a shared access policy. {deviceId}/{moduleId}@sas.{hubName} is taken
// for a module (the documentation does not say; spec §10.7).
type SASLPlainUser struct {
	Identity Identity // device or module form
	Policy   string   // policy form
	HubName  string   // the first DNS label of the hub's host name
}

// ParseSASLPlainUsername splits a SASL PLAIN username. The split is at the
// last "@sas.", because device ids may hold '@'.
func ParseSASLPlainUsername(s string) (SASLPlainUser, error) {
	i := strings.LastIndex(s, "@sas.")
	if i <= 0 || i+len("@sas.") == len(s) {
		return SASLPlainUser{}, fmt.Errorf("SASL PLAIN username %q has neither the form {deviceId}@sas.{hubName} nor {policyName}@sas.root.{hubName}", clip(s))
	}
	who, hub := s[:i], s[i+len("@sas."):]
	if p, ok := strings.CutPrefix(hub, "root."); ok && p != "" {
		return SASLPlainUser{Policy: who, HubName: p}, nil
	}
	id, err := ParseClientID(who)
	if err != nil {
		return SASLPlainUser{}, fmt.Errorf("SASL PLAIN username %q: %w", clip(s), err)
	}
	return SASLPlainUser{Identity: id, HubName: hub}, nil
}

// FormatSASLPlainUsername writes the username of a device or module.
func FormatSASLPlainUsername(id Identity, hubName string) string {
	return id.ClientID() + "@sas." + hubName
}

// FormatSASLPlainPolicyUsername writes the username of a shared access policy.
func FormatSASLPlainPolicyUsername(policy, hubName string) string {
	return policy + "@sas.root." + hubName
}

// HubName is the first DNS label of a hub's host name, as SASL PLAIN usernames
// carry it: "myhub" for myhub.azure-devices.net.
func HubName(host string) string {
	name, _, _ := strings.Cut(host, ".")
	return name
}

// AMQPMessage is an AMQP message reduced to the sections IoT Hub reads and
// writes, in codec-neutral Go values, so that the emulator (on its own codec)
// and clients (on another) map messages to Message the same way.
//
// MessageID and CorrelationID hold an AMQP message id: a string, a uint64, a
// []byte, or a uuid — any 16-byte value with a String method giving the
// canonical form. Property and annotation values are AMQP scalars: strings,
// symbols (any Go string kind), booleans, numbers, times, []byte or uuids.
type AMQPMessage struct {
	MessageID, CorrelationID any
	UserID                   []byte
	To                       string
	ContentType              string
	ContentEncoding          string
	AbsoluteExpiryTime       time.Time
	ApplicationProperties    []AMQPProperty
	MessageAnnotations       []AMQPProperty
	Body                     []byte
}

// AMQPProperty is one application property or message annotation.
type AMQPProperty struct {
	Name  string
	Value any
}

// ErrAMQPValue is wrapped by the errors of FromAMQP about values IoT Hub does
// not take.
var ErrAMQPValue = errors.New("unsupported AMQP value")

// FromAMQP maps an AMQP message to a Message. The .NET SDK's system properties
// sent as application properties (iothub-creation-time-utc,
// iothub-message-schema, iothub-outputname) and annotations
// (iothub-interface-id, dt-subject) fill their fields; other annotations are
// kept in Annotations. IoT Hub takes string application properties; other
// scalars are kept as their text (the .NET SDK drops them before sending,
// others send them), and lists, maps and described values are refused.
func FromAMQP(a *AMQPMessage) (*Message, error) {
	m := &Message{Body: a.Body, UserID: string(a.UserID), To: a.To, ContentType: a.ContentType, ContentEncoding: a.ContentEncoding, ExpiryTime: a.AbsoluteExpiryTime}
	var err error
	if m.MessageID, err = optionalID(a.MessageID); err != nil {
		return nil, fmt.Errorf("message-id: %w", err)
	}
	if m.CorrelationID, err = optionalID(a.CorrelationID); err != nil {
		return nil, fmt.Errorf("correlation-id: %w", err)
	}
	for _, p := range a.ApplicationProperties {
		v, ok := AMQPValueText(p.Value)
		if !ok {
			return nil, fmt.Errorf("%w: application property %q holds a %T; IoT Hub takes strings", ErrAMQPValue, clip(p.Name), p.Value)
		}
		switch p.Name {
		case AMQPPropCreationTime:
			if m.CreationTime, err = amqpTime(p.Value, v); err != nil {
				return nil, fmt.Errorf("application property %s: %w", p.Name, err)
			}
		case AMQPPropMessageSchema:
			m.MessageSchema = v
		case AMQPPropOutputName:
			m.OutputName = v
		default:
			m.Properties = append(m.Properties, Property{p.Name, v})
		}
	}
	for _, p := range a.MessageAnnotations {
		v, ok := AMQPValueText(p.Value)
		if !ok {
			// An annotation is the sender's business; one the hub cannot show
			// as text is kept by type.
			v = fmt.Sprintf("(%T)", p.Value)
		}
		switch p.Name {
		case AnnotationInterfaceID:
			m.InterfaceID = v
		case AnnotationComponentName:
			m.ComponentName = v
		default:
			m.Annotations = append(m.Annotations, Property{p.Name, v})
		}
	}
	return m, nil
}

func optionalID(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	return AMQPIDString(v)
}

func amqpTime(raw any, text string) (time.Time, error) {
	if t, ok := raw.(time.Time); ok {
		return t.UTC(), nil
	}
	return ParseTime(text)
}

// ToAMQP maps a Message to an AMQP message: ids as strings, the system
// properties the .NET SDK reads from application properties and annotations
// there, then the application properties and annotations in order.
func ToAMQP(m *Message) *AMQPMessage {
	a := &AMQPMessage{To: m.To, ContentType: m.ContentType, ContentEncoding: m.ContentEncoding, AbsoluteExpiryTime: m.ExpiryTime, Body: m.Body}
	if m.MessageID != "" {
		a.MessageID = m.MessageID
	}
	if m.CorrelationID != "" {
		a.CorrelationID = m.CorrelationID
	}
	if m.UserID != "" {
		a.UserID = []byte(m.UserID)
	}
	if !m.CreationTime.IsZero() {
		a.ApplicationProperties = append(a.ApplicationProperties, AMQPProperty{AMQPPropCreationTime, FormatTime(m.CreationTime)})
	}
	if m.MessageSchema != "" {
		a.ApplicationProperties = append(a.ApplicationProperties, AMQPProperty{AMQPPropMessageSchema, m.MessageSchema})
	}
	if m.OutputName != "" {
		a.ApplicationProperties = append(a.ApplicationProperties, AMQPProperty{AMQPPropOutputName, m.OutputName})
	}
	for _, p := range m.Properties {
		a.ApplicationProperties = append(a.ApplicationProperties, AMQPProperty{p.Name, p.Value})
	}
	if m.InterfaceID != "" {
		a.MessageAnnotations = append(a.MessageAnnotations, AMQPProperty{AnnotationInterfaceID, m.InterfaceID})
	}
	if m.ComponentName != "" {
		a.MessageAnnotations = append(a.MessageAnnotations, AMQPProperty{AnnotationComponentName, m.ComponentName})
	}
	for _, p := range m.Annotations {
		a.MessageAnnotations = append(a.MessageAnnotations, AMQPProperty{p.Name, p.Value})
	}
	return a
}

// AMQPIDString is the text of an AMQP message-id or correlation-id, which is
// how the hub stores and compares them: a string as is, a ulong in decimal, a
// uuid in its canonical lowercase form (so that the uuid the Node SDK sends
// for a uuid-looking string gives that string back), and binary as its UTF-8
// text, or lowercase hex when it is not UTF-8.
func AMQPIDString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case []byte:
		if utf8.Valid(x) {
			return string(x), nil
		}
		return hex.EncodeToString(x), nil
	case fmt.Stringer:
		if isUUID(v) {
			return strings.ToLower(x.String()), nil
		}
	}
	return "", fmt.Errorf("%w: an id of Go type %T; AMQP ids are string, ulong, uuid or binary", ErrAMQPValue, v)
}

// isUUID reports whether v is a 16-byte array value, as every Go AMQP
// library's uuid type is.
func isUUID(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Array && t.Len() == 16 && t.Elem().Kind() == reflect.Uint8
}

// AMQPValueText is the text of an AMQP scalar: strings and symbols as they
// are, booleans and numbers as Go formats them, times as IoT Hub writes them,
// uuids in canonical form, binary as UTF-8 text or hex. ok is false for
// lists, maps, described values and nil.
func AMQPValueText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case time.Time:
		return FormatTime(x), true
	case []byte:
		s, _ := AMQPIDString(x)
		return s, true
	}
	if isUUID(v) {
		if s, ok := v.(fmt.Stringer); ok {
			return strings.ToLower(s.String()), true
		}
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
		return rv.String(), true // a symbol
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Int32 {
		return strconv.FormatInt(rv.Int(), 10), true // a char
	}
	return "", false
}

// AMQPStatus reads a status that an SDK sends as an AMQP int (IoThub-status,
// the twin status annotation, the CBS status-code), accepting the other
// integer types and decimal text too.
func AMQPStatus(v any) (int, bool) {
	switch x := v.(type) {
	case int32:
		return int(x), true
	case int64:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return int(x), true
		}
	case int16:
		return int(x), true
	case int8:
		return int(x), true
	case uint8:
		return int(x), true
	case uint16:
		return int(x), true
	case uint32:
		if x <= math.MaxInt32 {
			return int(x), true
		}
	case uint64:
		if x <= math.MaxInt32 {
			return int(x), true
		}
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}
