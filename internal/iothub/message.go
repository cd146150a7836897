package iothub

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Property is one application property: IoT Hub keeps their order and their
// names as sent.
type Property struct {
	Name, Value string
}

// Message is an IoT Hub message as every protocol carries it: a body, the system
// properties IoT Hub knows, and application properties in the order sent.
type Message struct {
	Body []byte

	MessageID       string
	CorrelationID   string
	UserID          string
	To              string
	ContentType     string
	ContentEncoding string
	ExpiryTime      time.Time // absolute expiry; zero when unset
	CreationTime    time.Time // iothub-creation-time-utc; zero when unset
	OutputName      string    // iothub-outputname (modules)
	InterfaceID     string    // iothub-interface-id
	ComponentName   string    // dt-subject
	MessageSchema   string    // iothub-message-schema

	Properties []Property
	// Annotations are the AMQP message annotations that map to none of the
	// fields above, as text, in the order sent; other protocols have none.
	Annotations []Property
}

// Get returns the value of the first application property named name.
func (m *Message) Get(name string) (string, bool) {
	for _, p := range m.Properties {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// Set replaces the application property named name, or appends it.
func (m *Message) Set(name, value string) {
	for i, p := range m.Properties {
		if p.Name == name {
			m.Properties[i].Value = value
			return
		}
	}
	m.Properties = append(m.Properties, Property{name, value})
}

// Size is the message's size as IoT Hub counts it against its limits: the body,
// the values of the system properties, and the names and values of the
// application properties (D-MSG).
func (m *Message) Size() int {
	n := len(m.Body)
	for _, v := range []string{m.MessageID, m.CorrelationID, m.UserID, m.To, m.ContentType, m.ContentEncoding, m.OutputName, m.InterfaceID, m.ComponentName, m.MessageSchema} {
		n += len(v)
	}
	if !m.ExpiryTime.IsZero() {
		n += len(FormatTime(m.ExpiryTime))
	}
	if !m.CreationTime.IsZero() {
		n += len(FormatTime(m.CreationTime))
	}
	for _, p := range m.Properties {
		n += len(p.Name) + len(p.Value)
	}
	return n
}

// FormatTime writes a time the way IoT Hub writes property times: UTC, ISO 8601,
// with milliseconds only when there are any.
func FormatTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/int(time.Millisecond) == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000Z")
}

// ParseTime reads an ISO 8601 time as devices send it, with or without an offset
// and fractional seconds.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time such as 2021-04-21T11:30:16Z", s)
}

// System property keys in MQTT property bags (D-MQTT; spec §2.6).
const (
	BagMessageID       = "$.mid"
	BagCorrelationID   = "$.cid"
	BagUserID          = "$.uid"
	BagTo              = "$.to"
	BagContentType     = "$.ct"
	BagContentEncoding = "$.ce"
	BagExpiry          = "$.exp"
	BagCreationTime    = "$.ctime"
	BagOutputName      = "$.on"
	BagInterfaceID     = "$.ifid"
	BagComponentName   = "$.sub"
	BagMessageSchema   = "$.schema"
	BagConnDeviceID    = "$.cdid"
	BagConnModuleID    = "$.cmid"
)

// Names of the properties the hub stamps on every accepted device-to-cloud
// message, whatever the protocol (D-MSG).
const (
	PropConnectionDeviceID = "iothub-connection-device-id"
	PropConnectionModuleID = "iothub-connection-module-id"
	PropConnectionAuthGen  = "iothub-connection-auth-generation-id"
	PropConnectionAuth     = "iothub-connection-auth-method"
	PropEnqueuedTime       = "iothub-enqueuedtime"
	PropMessageType        = "iothub-MessageType" // "Will" for an MQTT last will
	PropMQTTRetain         = "mqtt-retain"
	PropAck                = "iothub-ack" // none | positive | negative | full
)

// ErrBadBag is wrapped by every property bag decoding error.
var ErrBadBag = errors.New("malformed property bag")

// maxBagEntries bounds how many properties one bag may carry, so a topic of
// "&&&&…" cannot make a decoder allocate without limit.
const maxBagEntries = 256

// DecodeBag parses an MQTT property bag (the part of a topic after
// messages/events/ or messages/devicebound/) into m. Keys and values are
// percent-decoded; a '+' stays a '+' (every SDK encodes a space as %20); a key
// without '=' is a property with a null value, kept as "". System keys may
// arrive as "$." or, from the C SDK, as "%24.". A leading "?" is allowed.
// Unknown "$." keys are ignored, as the hub ignores them.
func DecodeBag(bag string, m *Message) error {
	bag = strings.TrimPrefix(bag, "?")
	if bag == "" {
		return nil
	}
	n := 0
	for part := range strings.SplitSeq(bag, "&") {
		if part == "" {
			continue
		}
		if n++; n > maxBagEntries {
			return fmt.Errorf("%w: more than %d properties", ErrBadBag, maxBagEntries)
		}
		rawK, rawV, _ := strings.Cut(part, "=")
		k, ok := unescape(rawK)
		if !ok {
			return fmt.Errorf("%w: broken %%-escape in name %q", ErrBadBag, clip(rawK))
		}
		v, ok := unescape(rawV)
		if !ok {
			return fmt.Errorf("%w: broken %%-escape in the value of %q", ErrBadBag, clip(k))
		}
		if k == "" {
			return fmt.Errorf("%w: a property has an empty name", ErrBadBag)
		}
		if err := setSystem(m, k, v); err != nil {
			return err
		}
	}
	return nil
}

// setSystem stores a system key in its field, or v as an application property.
func setSystem(m *Message, k, v string) error {
	if !strings.HasPrefix(k, "$.") {
		m.Properties = append(m.Properties, Property{k, v})
		return nil
	}
	switch k {
	case BagMessageID:
		m.MessageID = v
	case BagCorrelationID:
		m.CorrelationID = v
	case BagUserID:
		m.UserID = v
	case BagTo:
		m.To = v
	case BagContentType:
		m.ContentType = v
	case BagContentEncoding:
		m.ContentEncoding = v
	case BagOutputName:
		m.OutputName = v
	case BagInterfaceID:
		m.InterfaceID = v
	case BagComponentName:
		m.ComponentName = v
	case BagMessageSchema:
		m.MessageSchema = v
	case BagExpiry, BagCreationTime:
		t, err := ParseTime(v)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadBag, k, err)
		}
		if k == BagExpiry {
			m.ExpiryTime = t
		} else {
			m.CreationTime = t
		}
	}
	return nil
}

// EncodeBag writes m's system and application properties as a property bag,
// every key and value percent-encoded so that no '/' survives: the Node and
// Python SDKs split topics on '/' and would otherwise cut the bag short. System
// properties come first, in the order the hub uses. The hub writes system keys
// as "%24.mid"; the Node and Python SDKs write "$.mid", which literalDollar
// selects.
func EncodeBag(m *Message, literalDollar bool) string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		if literalDollar && strings.HasPrefix(k, "$.") {
			b.WriteString("$.")
			b.WriteString(escape(k[2:]))
		} else {
			b.WriteString(escape(k))
		}
		b.WriteByte('=')
		b.WriteString(escape(v))
	}
	for _, kv := range [...]struct{ k, v string }{
		{BagMessageID, m.MessageID}, {BagTo, m.To}, {BagCorrelationID, m.CorrelationID},
		{BagUserID, m.UserID}, {BagContentType, m.ContentType}, {BagContentEncoding, m.ContentEncoding},
		{BagOutputName, m.OutputName}, {BagInterfaceID, m.InterfaceID}, {BagComponentName, m.ComponentName},
		{BagMessageSchema, m.MessageSchema},
	} {
		if kv.v != "" {
			add(kv.k, kv.v)
		}
	}
	if !m.ExpiryTime.IsZero() {
		add(BagExpiry, FormatTime(m.ExpiryTime))
	}
	if !m.CreationTime.IsZero() {
		add(BagCreationTime, FormatTime(m.CreationTime))
	}
	for _, p := range m.Properties {
		add(p.Name, p.Value)
	}
	return b.String()
}

// escape percent-encodes everything but unreserved characters, upper-case hex.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// unescape undoes %XX escapes only.
func unescape(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
			return "", false
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// Escape percent-encodes s for a topic, a bag or a URL path segment the way this
// package does everywhere: unreserved characters stay, everything else is %XX.
func Escape(s string) string { return escape(s) }

// Unescape undoes Escape (and any other %XX escaping); ok is false for a broken
// escape.
func Unescape(s string) (string, bool) { return unescape(s) }

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// HTTP header names of the device REST API (spec §4.1). Header names are
// case-insensitive on the wire; these are the forms the SDKs send.
const (
	HeaderMessageID       = "iothub-messageid"
	HeaderCorrelationID   = "iothub-correlationid"
	HeaderUserID          = "iothub-userid"
	HeaderTo              = "iothub-to"
	HeaderExpiry          = "iothub-expiry"
	HeaderContentType     = "iothub-contenttype"
	HeaderContentEncoding = "iothub-contentencoding"
	HeaderCreationTime    = "iothub-creationtimeutc"
	HeaderMessageSchema   = "iothub-messageschema"
	HeaderInterfaceID     = "iothub-interface-id"
	HeaderComponentName   = "dt-subject"
	HeaderAck             = "iothub-ack"
	HeaderSequenceNumber  = "iothub-sequencenumber"
	HeaderEnqueuedTime    = "iothub-enqueuedtime"
	HeaderDeliveryCount   = "iothub-deliverycount"
	HeaderOperation       = "iothub-operation"
	HeaderErrorCode       = "iothub-errorcode"
	// HeaderAppPrefix prefixes an application property's name.
	HeaderAppPrefix = "iothub-app-"
	// ContentTypeBatch marks a JSON batch of device-to-cloud messages.
	ContentTypeBatch = "application/vnd.microsoft.iothub.json"
	// ContentTypeEventHubsBatch marks an Event Hubs REST batch.
	ContentTypeEventHubsBatch = "application/vnd.microsoft.servicebus.json"
)

// HeaderFields lists the system property headers with accessors, so that both
// sides map headers to message fields the same way.
var HeaderFields = []struct {
	Header string
	Get    func(*Message) string
	Set    func(*Message, string) error
}{
	{HeaderMessageID, func(m *Message) string { return m.MessageID }, func(m *Message, v string) error { m.MessageID = v; return nil }},
	{HeaderCorrelationID, func(m *Message) string { return m.CorrelationID }, func(m *Message, v string) error { m.CorrelationID = v; return nil }},
	{HeaderUserID, func(m *Message) string { return m.UserID }, func(m *Message, v string) error { m.UserID = v; return nil }},
	{HeaderTo, func(m *Message) string { return m.To }, func(m *Message, v string) error { m.To = v; return nil }},
	{HeaderContentType, func(m *Message) string { return m.ContentType }, func(m *Message, v string) error { m.ContentType = v; return nil }},
	{HeaderContentEncoding, func(m *Message) string { return m.ContentEncoding }, func(m *Message, v string) error { m.ContentEncoding = v; return nil }},
	{HeaderMessageSchema, func(m *Message) string { return m.MessageSchema }, func(m *Message, v string) error { m.MessageSchema = v; return nil }},
	{HeaderInterfaceID, func(m *Message) string { return m.InterfaceID }, func(m *Message, v string) error { m.InterfaceID = v; return nil }},
	{HeaderComponentName, func(m *Message) string { return m.ComponentName }, func(m *Message, v string) error { m.ComponentName = v; return nil }},
	{HeaderExpiry, func(m *Message) string { return timeOrEmpty(m.ExpiryTime) }, func(m *Message, v string) (err error) { m.ExpiryTime, err = ParseTime(v); return }},
	{HeaderCreationTime, func(m *Message) string { return timeOrEmpty(m.CreationTime) }, func(m *Message, v string) (err error) { m.CreationTime, err = ParseTime(v); return }},
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return FormatTime(t)
}
