package iothub

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Identity names a device, or a module of a device.
type Identity struct {
	DeviceID string
	ModuleID string // empty for a device
}

func (id Identity) String() string {
	if id.ModuleID != "" {
		return id.DeviceID + "/" + id.ModuleID
	}
	return id.DeviceID
}

// ClientID is the MQTT client identifier IoT Hub expects for the identity.
func (id Identity) ClientID() string { return id.String() }

// devicePrefix is the topic prefix of an identity's own topics.
func (id Identity) devicePrefix() string {
	p := "devices/" + id.DeviceID
	if id.ModuleID != "" {
		p += "/modules/" + id.ModuleID
	}
	return p
}

// TelemetryTopic is where the identity publishes device-to-cloud messages, with
// m's properties as the bag.
func TelemetryTopic(id Identity, m *Message, literalDollar bool) string {
	return id.devicePrefix() + "/messages/events/" + EncodeBag(m, literalDollar)
}

// C2DTopic is where the hub publishes a cloud-to-device message to a device.
func C2DTopic(deviceID string, m *Message) string {
	return "devices/" + deviceID + "/messages/devicebound/" + EncodeBag(m, false)
}

// C2DFilter is the subscription a device makes to receive cloud-to-device messages.
func C2DFilter(deviceID string) string { return "devices/" + deviceID + "/messages/devicebound/#" }

// Subscription filters the hub honours besides C2DFilter and module inputs.
const (
	MethodsFilter      = "$iothub/methods/POST/#"
	TwinResponseFilter = "$iothub/twin/res/#"
	DesiredFilter      = "$iothub/twin/PATCH/properties/desired/#"
)

// ModuleInputsFilter is what Node and Python module clients subscribe to for
// their inputs; the C SDK subscribes to ModuleFilter.
func ModuleInputsFilter(id Identity) string { return id.devicePrefix() + "/inputs/#" }

// ModuleFilter is the C SDK's wider module subscription.
func ModuleFilter(id Identity) string { return id.devicePrefix() + "/#" }

// TopicKind says what a topic a device publishes to means.
type TopicKind int

const (
	TopicUnknown TopicKind = iota
	TopicTelemetry
	TopicTwinGet
	TopicTwinPatchReported
	TopicMethodResponse
)

// DevicePublish is a topic a device published to, parsed.
type DevicePublish struct {
	Kind     TopicKind
	Identity Identity // for telemetry: the identity named in the topic
	Bag      string   // telemetry: the raw property bag
	RID      string   // twin and method responses: the request id
	Status   int      // method response: the device's status
	Version  string   // reported PATCH: the optional $version (accepted and ignored)
}

// ParseDevicePublish reads a topic a device published to. It does not check
// that the topic belongs to the publishing identity; see DevicePublish.Identity.
func ParseDevicePublish(topic string) (DevicePublish, error) {
	switch {
	case strings.HasPrefix(topic, "devices/"):
		rest := topic[len("devices/"):]
		dev, rest, ok := strings.Cut(rest, "/")
		if !ok || dev == "" {
			break
		}
		p := DevicePublish{Kind: TopicTelemetry, Identity: Identity{DeviceID: dev}}
		if strings.HasPrefix(rest, "modules/") {
			mod, r, ok := strings.Cut(rest[len("modules/"):], "/")
			if !ok || mod == "" {
				break
			}
			p.Identity.ModuleID, rest = mod, r
		}
		if bag, ok := strings.CutPrefix(rest, "messages/events/"); ok {
			p.Bag = bag
			return p, nil
		}
		// "devices/{id}/messages/events" with no trailing slash is sent by some
		// hand-written clients; the hub accepts it.
		if rest == "messages/events" {
			return p, nil
		}
	case strings.HasPrefix(topic, "$iothub/twin/"):
		rest := topic[len("$iothub/twin/"):]
		switch {
		case strings.HasPrefix(rest, "GET/"):
			q, err := topicQuery(rest[len("GET/"):])
			if err != nil {
				return DevicePublish{}, err
			}
			return DevicePublish{Kind: TopicTwinGet, RID: q.Get("$rid")}, nil
		case strings.HasPrefix(rest, "PATCH/properties/reported/"):
			q, err := topicQuery(rest[len("PATCH/properties/reported/"):])
			if err != nil {
				return DevicePublish{}, err
			}
			return DevicePublish{Kind: TopicTwinPatchReported, RID: q.Get("$rid"), Version: q.Get("$version")}, nil
		}
	case strings.HasPrefix(topic, "$iothub/methods/res/"):
		rest := topic[len("$iothub/methods/res/"):]
		st, q, ok := strings.Cut(rest, "/")
		if !ok {
			break
		}
		status, err := strconv.Atoi(st)
		if err != nil {
			return DevicePublish{}, fmt.Errorf("method response topic %q: the status %q is not an integer", clip(topic), clip(st))
		}
		v, err := topicQuery(q)
		if err != nil {
			return DevicePublish{}, err
		}
		return DevicePublish{Kind: TopicMethodResponse, Status: status, RID: v.Get("$rid")}, nil
	}
	return DevicePublish{}, fmt.Errorf("topic %q is not one IoT Hub accepts from devices", clip(topic))
}

// topicQuery parses the "?a=b&c=d" tail of a twin or method topic.
func topicQuery(s string) (url.Values, error) {
	s = strings.TrimPrefix(s, "?")
	v, err := url.ParseQuery(strings.ReplaceAll(s, "+", "%2B"))
	if err != nil {
		return nil, fmt.Errorf("topic query %q: %w", clip(s), err)
	}
	return v, nil
}

// TwinResponseTopic is how the hub answers a twin request: status and the
// device's $rid, and for a reported PATCH the new reported version.
func TwinResponseTopic(status int, rid string, version int64) string {
	t := "$iothub/twin/res/" + strconv.Itoa(status) + "/?$rid=" + escape(rid)
	if version > 0 {
		t += "&$version=" + strconv.FormatInt(version, 10)
	}
	return t
}

// DesiredPatchTopic is where the hub publishes a desired-properties update.
func DesiredPatchTopic(version int64) string {
	return "$iothub/twin/PATCH/properties/desired/?$version=" + strconv.FormatInt(version, 10)
}

// MethodRequestTopic is where the hub publishes a direct-method call.
func MethodRequestTopic(name, rid string) string {
	return "$iothub/methods/POST/" + name + "/?$rid=" + escape(rid)
}

// TwinGetTopic is where a device asks for its twin.
func TwinGetTopic(rid string) string { return "$iothub/twin/GET/?$rid=" + escape(rid) }

// ReportedPatchTopic is where a device sends a reported-properties patch.
func ReportedPatchTopic(rid string) string {
	return "$iothub/twin/PATCH/properties/reported/?$rid=" + escape(rid)
}

// MethodResponseTopic is where a device answers a direct-method call.
func MethodResponseTopic(status int, rid string) string {
	return "$iothub/methods/res/" + strconv.Itoa(status) + "/?$rid=" + escape(rid)
}

// HubPublish is a topic the hub published to a device, parsed on the device side.
type HubPublish struct {
	Kind    HubTopicKind
	Bag     string // C2D: the property bag
	Method  string // method request: the method name
	RID     string
	Status  int   // twin response
	Version int64 // twin response to a PATCH, desired patch
}

// HubTopicKind says what a topic the hub publishes to means.
type HubTopicKind int

const (
	HubTopicUnknown HubTopicKind = iota
	HubTopicC2D
	HubTopicMethodRequest
	HubTopicTwinResponse
	HubTopicDesiredPatch
)

// ParseHubPublish reads a topic the hub published to a device.
func ParseHubPublish(topic string) (HubPublish, error) {
	switch {
	case strings.HasPrefix(topic, "devices/"):
		_, rest, ok := strings.Cut(topic[len("devices/"):], "/messages/devicebound/")
		if ok {
			return HubPublish{Kind: HubTopicC2D, Bag: rest}, nil
		}
	case strings.HasPrefix(topic, "$iothub/methods/POST/"):
		name, q, ok := strings.Cut(topic[len("$iothub/methods/POST/"):], "/")
		if ok && name != "" {
			v, err := topicQuery(q)
			if err != nil {
				return HubPublish{}, err
			}
			return HubPublish{Kind: HubTopicMethodRequest, Method: name, RID: v.Get("$rid")}, nil
		}
	case strings.HasPrefix(topic, "$iothub/twin/res/"):
		st, q, ok := strings.Cut(topic[len("$iothub/twin/res/"):], "/")
		if ok {
			status, err := strconv.Atoi(st)
			if err != nil {
				return HubPublish{}, fmt.Errorf("twin response topic %q: status %q is not an integer", clip(topic), clip(st))
			}
			v, err := topicQuery(q)
			if err != nil {
				return HubPublish{}, err
			}
			ver, _ := strconv.ParseInt(v.Get("$version"), 10, 64)
			return HubPublish{Kind: HubTopicTwinResponse, Status: status, RID: v.Get("$rid"), Version: ver}, nil
		}
	case strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/desired/"):
		v, err := topicQuery(topic[len("$iothub/twin/PATCH/properties/desired/"):])
		if err != nil {
			return HubPublish{}, err
		}
		ver, _ := strconv.ParseInt(v.Get("$version"), 10, 64)
		return HubPublish{Kind: HubTopicDesiredPatch, Version: ver}, nil
	}
	return HubPublish{}, fmt.Errorf("topic %q is not one IoT Hub publishes to devices", clip(topic))
}

// FilterAllowed reports whether an identity may subscribe to filter: its own
// C2D topic, the method and twin topics, and, for modules, its inputs.
func FilterAllowed(id Identity, filter string) bool {
	switch filter {
	case MethodsFilter, TwinResponseFilter, DesiredFilter:
		return true
	}
	if id.ModuleID == "" {
		return filter == C2DFilter(id.DeviceID)
	}
	return filter == ModuleInputsFilter(id) || filter == ModuleFilter(id)
}
