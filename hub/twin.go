package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

// twinState is an identity's twin; the identity's mutex guards it.
type twinState struct {
	desired, reported, tags         map[string]any
	desiredVersion, reportedVersion int64
	version                         int64
	desiredUpdated, reportedUpdated time.Time
}

func (t *twinState) init(now time.Time) {
	t.desired, t.reported, t.tags = map[string]any{}, map[string]any{}, map[string]any{}
	t.desiredVersion, t.reportedVersion, t.version = 1, 1, 1
	t.desiredUpdated, t.reportedUpdated = now, now
}

// Twin is the service's view of a device or module twin.
type Twin struct {
	Identity        iothub.Identity
	ETag            string
	Version         int64
	Tags            map[string]any
	Desired         map[string]any
	DesiredVersion  int64
	Reported        map[string]any
	ReportedVersion int64
	DesiredUpdated  time.Time
	ReportedUpdated time.Time
	Connected       bool
	LastActivity    time.Time
	Status          string
	AuthType        AuthType
}

// MarshalJSON writes the twin as the service REST API does.
func (t Twin) MarshalJSON() ([]byte, error) {
	section := func(props map[string]any, version int64, updated time.Time) map[string]any {
		m := make(map[string]any, len(props)+2)
		for k, v := range props {
			m[k] = v
		}
		m["$metadata"] = map[string]any{"$lastUpdated": iothub.FormatTime(updated), "$lastUpdatedVersion": version}
		m["$version"] = version
		return m
	}
	conn := "Disconnected"
	if t.Connected {
		conn = "Connected"
	}
	v := map[string]any{
		"deviceId":           t.Identity.DeviceID,
		"etag":               t.ETag,
		"version":            t.Version,
		"status":             t.Status,
		"connectionState":    conn,
		"lastActivityTime":   iothub.FormatTime(t.LastActivity),
		"authenticationType": string(t.AuthType),
		"tags":               t.Tags,
		"properties": map[string]any{
			"desired":  section(t.Desired, t.DesiredVersion, t.DesiredUpdated),
			"reported": section(t.Reported, t.ReportedVersion, t.ReportedUpdated),
		},
	}
	if t.Identity.ModuleID != "" {
		v["moduleId"] = t.Identity.ModuleID
	}
	return json.Marshal(v)
}

// deviceView is the twin as a device gets it over MQTT or AMQP: desired and
// reported only, each with its $version.
func (t *twinState) deviceView() []byte {
	b, _ := json.Marshal(map[string]any{
		"desired":  withVersion(t.desired, t.desiredVersion),
		"reported": withVersion(t.reported, t.reportedVersion),
	})
	return b
}

func withVersion(props map[string]any, v int64) map[string]any {
	m := make(map[string]any, len(props)+1)
	for k, x := range props {
		m[k] = x
	}
	m["$version"] = v
	return m
}

// GetTwin returns the device's view of its twin.
func (c *Conn) GetTwin() ([]byte, error) {
	if c.h.cfg.Throttler != nil {
		if err := c.h.cfg.Throttler.Allow(OpTwinRead, c.principal.Identity, 0); err != nil {
			return nil, err
		}
	}
	c.Touch()
	c.it.mu.Lock()
	b := c.it.twin.deviceView()
	c.it.mu.Unlock()
	c.h.stats.TwinGets.Add(1)
	c.h.emit(Event{Kind: EventTwinGet, Identity: c.principal.Identity, Protocol: c.proto})
	return b, nil
}

// PatchReported merges a device's reported-properties patch (JSON merge patch:
// null deletes) and returns the new reported version.
func (c *Conn) PatchReported(patch []byte) (int64, error) {
	p, err := decodeObject(patch)
	if err != nil {
		return 0, iothub.Errorf(iothub.CodeArgumentInvalid, "reported properties patch: %v", err)
	}
	if c.h.cfg.Throttler != nil {
		if err := c.h.cfg.Throttler.Allow(OpTwinUpdate, c.principal.Identity, 0); err != nil {
			return 0, err
		}
	}
	c.Touch()
	it := c.it
	it.mu.Lock()
	merged := mergePatch(cloneMap(it.twin.reported), stripMeta(p))
	if n := jsonSize(merged); n > iothub.MaxTwinSection {
		it.mu.Unlock()
		return 0, iothub.Errorf(iothub.CodeArgumentInvalid, "reported properties would be %d bytes; IoT Hub's limit is %d", n, iothub.MaxTwinSection)
	}
	it.twin.reported = merged
	it.twin.reportedVersion++
	it.twin.version++
	it.twin.reportedUpdated = c.h.now()
	v := it.twin.reportedVersion
	it.mu.Unlock()
	c.h.stats.TwinReportedPatches.Add(1)
	c.h.emit(Event{Kind: EventTwinReported, Identity: c.principal.Identity, Protocol: c.proto, Detail: "$version " + strconv.FormatInt(v, 10)})
	return v, nil
}

// SubscribeDesired starts handing desired-property updates to notify, which
// must not block. The hub sends them only while the device is connected and
// subscribed; there is no replay (D-MQTT).
func (c *Conn) SubscribeDesired(notify func(patch []byte, version int64)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.desired = notify
	}
}

// UnsubscribeDesired stops desired-property notifications.
func (c *Conn) UnsubscribeDesired() {
	c.mu.Lock()
	c.desired = nil
	c.mu.Unlock()
}

// GetTwin returns the service's view of a twin.
func (h *Hub) GetTwin(id iothub.Identity) (Twin, error) {
	it := h.lookup(id)
	if it == nil {
		return Twin{}, iothub.Errorf(iothub.CodeDeviceNotFound, "%s is not registered", describe(id))
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.snapshotTwin(), nil
}

func (it *identity) snapshotTwin() Twin {
	status := "enabled"
	if !it.reg.Enabled {
		status = "disabled"
	}
	return Twin{
		Identity: it.reg.Identity, ETag: etag(uint64(it.twin.version)), Version: it.twin.version,
		Tags: cloneMap(it.twin.tags), Desired: cloneMap(it.twin.desired), DesiredVersion: it.twin.desiredVersion,
		Reported: cloneMap(it.twin.reported), ReportedVersion: it.twin.reportedVersion,
		DesiredUpdated: it.twin.desiredUpdated, ReportedUpdated: it.twin.reportedUpdated,
		Connected: it.conn != nil, LastActivity: it.lastActivity, Status: status, AuthType: it.reg.Auth,
	}
}

// UpdateTwin applies a service patch of the form
// {"tags":{…},"properties":{"desired":{…}}} (JSON merge patch, null deletes).
// ifMatch is the twin's ETag as the service sent it (quoted or not), or "" or
// "*" to skip the check. A connected device subscribed to desired updates gets
// the desired part with the new $version.
func (h *Hub) UpdateTwin(id iothub.Identity, patch []byte, ifMatch string) (Twin, error) {
	p, err := decodeObject(patch)
	if err != nil {
		return Twin{}, iothub.Errorf(iothub.CodeArgumentInvalid, "twin patch: %v", err)
	}
	var tags, desired map[string]any
	for k, v := range p {
		switch k {
		case "tags":
			if tags, err = asObject(v, "tags"); err != nil {
				return Twin{}, err
			}
		case "properties":
			props, err := asObject(v, "properties")
			if err != nil {
				return Twin{}, err
			}
			for pk, pv := range props {
				switch pk {
				case "desired":
					if desired, err = asObject(pv, "properties.desired"); err != nil {
						return Twin{}, err
					}
				case "reported":
					return Twin{}, iothub.Errorf(iothub.CodeArgumentInvalid, "reported properties are read-only for the service")
				}
			}
		}
	}
	it := h.lookup(id)
	if it == nil {
		return Twin{}, iothub.Errorf(iothub.CodeDeviceNotFound, "%s is not registered", describe(id))
	}
	if h.cfg.Throttler != nil {
		if err := h.cfg.Throttler.Allow(OpTwinUpdate, id, 0); err != nil {
			return Twin{}, err
		}
	}
	it.mu.Lock()
	if m := strings.Trim(ifMatch, `"`); m != "" && m != "*" && m != etag(uint64(it.twin.version)) {
		it.mu.Unlock()
		return Twin{}, iothub.Errorf(iothub.CodePreconditionFailed, "the twin's etag is %s, not %s", etag(uint64(it.twin.version)), ifMatch)
	}
	now := h.now()
	if tags != nil {
		merged := mergePatch(cloneMap(it.twin.tags), tags)
		if n := jsonSize(merged); n > iothub.MaxTwinTags {
			it.mu.Unlock()
			return Twin{}, iothub.Errorf(iothub.CodeArgumentInvalid, "tags would be %d bytes; IoT Hub's limit is %d", n, iothub.MaxTwinTags)
		}
		it.twin.tags = merged
	}
	var notify func([]byte, int64)
	var note []byte
	if desired != nil {
		desired = stripMeta(desired)
		merged := mergePatch(cloneMap(it.twin.desired), desired)
		if n := jsonSize(merged); n > iothub.MaxTwinSection {
			it.mu.Unlock()
			return Twin{}, iothub.Errorf(iothub.CodeArgumentInvalid, "desired properties would be %d bytes; IoT Hub's limit is %d", n, iothub.MaxTwinSection)
		}
		it.twin.desired = merged
		it.twin.desiredVersion++
		it.twin.desiredUpdated = now
		note, _ = json.Marshal(withVersion(desired, it.twin.desiredVersion))
		if c := it.conn; c != nil {
			c.mu.Lock()
			notify = c.desired
			c.mu.Unlock()
		}
	}
	if tags != nil || desired != nil {
		it.twin.version++
	}
	t := it.snapshotTwin()
	it.mu.Unlock()
	if desired != nil {
		h.stats.TwinDesiredUpdates.Add(1)
		h.emit(Event{Kind: EventTwinDesired, Identity: id, Detail: "$version " + strconv.FormatInt(t.DesiredVersion, 10)})
		if notify != nil {
			notify(note, t.DesiredVersion)
		}
	}
	return t, nil
}

// ReplaceTwin replaces a twin's tags and desired properties (PUT): members
// absent from the body are removed. Desired subscribers get the whole new
// desired section.
func (h *Hub) ReplaceTwin(id iothub.Identity, body []byte, ifMatch string) (Twin, error) {
	p, err := decodeObject(body)
	if err != nil {
		return Twin{}, iothub.Errorf(iothub.CodeArgumentInvalid, "twin: %v", err)
	}
	cur, err := h.GetTwin(id)
	if err != nil {
		return Twin{}, err
	}
	// A replacement is a merge patch that nulls every member the body drops.
	patch := map[string]any{}
	tags, _ := p["tags"].(map[string]any)
	nt := map[string]any{}
	for k := range cur.Tags {
		nt[k] = nil
	}
	for k, v := range tags {
		nt[k] = v
	}
	patch["tags"] = nt
	if props, ok := p["properties"].(map[string]any); ok {
		if desired, ok := props["desired"].(map[string]any); ok {
			nd := map[string]any{}
			for k := range cur.Desired {
				nd[k] = nil
			}
			for k, v := range desired {
				nd[k] = v
			}
			patch["properties"] = map[string]any{"desired": nd}
		}
	}
	b, _ := json.Marshal(patch)
	return h.UpdateTwin(id, b, ifMatch)
}

// UpdateDesired is UpdateTwin for desired properties only.
func (h *Hub) UpdateDesired(id iothub.Identity, desired map[string]any) (Twin, error) {
	b, err := json.Marshal(map[string]any{"properties": map[string]any{"desired": desired}})
	if err != nil {
		return Twin{}, err
	}
	return h.UpdateTwin(id, b, "*")
}

// decodeObject reads a JSON object, keeping numbers exactly as written.
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("not valid JSON: more than one value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON object, not %s", jsonKind(v))
	}
	return m, nil
}

func asObject(v any, where string) (map[string]any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, iothub.Errorf(iothub.CodeArgumentInvalid, "%s must be a JSON object, not %s", where, jsonKind(v))
	}
	return m, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "an object"
}

// mergePatch applies an RFC 7386 JSON merge patch to dst and returns it.
func mergePatch(dst, patch map[string]any) map[string]any {
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			cur, ok := dst[k].(map[string]any)
			if !ok {
				cur = map[string]any{}
			}
			dst[k] = mergePatch(cloneMap(cur), pv)
		default:
			dst[k] = v
		}
	}
	return dst
}

// stripMeta drops the read-only members a patch may echo back ($version,
// $metadata).
func stripMeta(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "$") {
			out[k] = v
		}
	}
	return out
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = cloneMap(sub)
		}
		out[k] = v
	}
	return out
}

func jsonSize(m map[string]any) int {
	b, _ := json.Marshal(m)
	return len(b)
}
