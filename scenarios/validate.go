package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catmsim/catmsim/firmware/examples"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/internal/metricdef"
	"github.com/catmsim/catmsim/protocols"
)

// MaxDevices bounds a scenario's fleet. One process runs tens of thousands of
// devices; a bigger fleet is split into shards, and a million keeps compiling
// a shard's plan (which walks the whole fleet) well under a second.
const MaxDevices = 1_000_000

// maxGroups bounds the number of fleet groups.
const maxGroups = 1000

// tiers are the IoT Hub tier names a target accepts, as hub.ParseTier reads
// them (a test keeps the two in step).
var tiers = map[string]string{"free": "F1", "f1": "F1", "b1": "B1", "b2": "B2", "b3": "B3", "s1": "S1", "s2": "S2", "s3": "S3"}

// What each protocol can do, for the checks below.
var (
	mqttFamily     = []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket, protocols.GenericMQTT}
	hubMQTT        = []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket}
	canTwin        = []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket, protocols.AMQP, protocols.AMQPWebSocket}
	canC2D         = []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket, protocols.AMQP, protocols.AMQPWebSocket, protocols.HTTPS}
	canBatch       = []protocols.Protocol{protocols.AMQP, protocols.AMQPWebSocket, protocols.HTTPS, protocols.EventHubsHTTPS}
	knownProtos    = []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket, protocols.AMQP, protocols.AMQPWebSocket, protocols.HTTPS, protocols.EventHubsHTTPS, protocols.GenericMQTT}
	nameRE         = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	scenarioNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$`)
	envRE          = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostLabelRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	apiVersionRE   = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}(-[0-9]{2})?(-preview)?$`)
	dtmiRE         = regexp.MustCompile(`^dtmi:[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?(?::[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?)*;[1-9][0-9]{0,8}$`)
)

func protoIn(p protocols.Protocol, set []protocols.Protocol) bool { return slices.Contains(set, p) }

func protoList(set []protocols.Protocol) string {
	s := make([]string, len(set))
	for i, p := range set {
		s[i] = string(p)
	}
	return orList(s)
}

// validator checks what the schema's tags cannot: rules across fields and
// sections. It reports at the place of the value concerned, or of the nearest
// enclosing one the file sets.
type validator struct {
	*decoder
	s       *Scenario
	stat    func(rel string) error
	groups  map[string]*Group
	members int
}

func (v *validator) at(path string) pos {
	for {
		if p, ok := v.pos[path]; ok {
			return p
		}
		if path == "" {
			return pos{}
		}
		path = parent(path)
	}
}

// sub appends a dotted run of plain keys ("tls.version") to a path.
func sub(path, keys string) string {
	for _, k := range strings.Split(keys, ".") {
		path = join(path, k)
	}
	return path
}

// parent strips the last element of a path: .key, [3] or ["key"].
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		for i := strings.LastIndexByte(path, '['); i >= 0; i = strings.LastIndexByte(path[:i], '[') {
			inner := path[i+1 : len(path)-1]
			if _, err := strconv.Atoi(inner); err == nil {
				return path[:i]
			}
			if _, err := strconv.Unquote(inner); err == nil {
				return path[:i]
			}
		}
		return ""
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// errorf reports a problem with the value at path, unless decoding already
// reported that value: a value that could not be read has no further
// mistakes worth telling.
func (v *validator) errorf(path, format string, args ...any) {
	if !v.failed[path] {
		v.diags.add(v.at(path), path, format, args...)
	}
}

func (v *validator) warnf(path, format string, args ...any) {
	if !v.failed[path] {
		v.warn(v.at(path), path, format, args...)
	}
}

// validate runs every cross-field check. Checks that depend on a value the
// decoder already rejected are skipped, so one mistake yields one error.
func (v *validator) validate() {
	s := v.s
	if s.IsSet("version") && s.Version != 1 {
		v.errorf("version", "only version 1 exists (got %d)", s.Version)
	}
	if s.IsSet("name") && !scenarioNameRE.MatchString(s.Name) {
		v.errorf("name", "must be 1 to 100 letters, digits, spaces, '.', '-' or '_', starting with a letter or digit: reports use it in file names (got %q)", clip(s.Name))
	}
	v.target()
	v.groups = map[string]*Group{}
	used := map[string]bool{}
	for i, g := range s.Fleet {
		v.group(i, g)
		used[g.Profile] = true
	}
	if s.IsSet("fleet") && len(s.Fleet) == 0 {
		v.errorf("fleet", "needs at least one group")
	}
	if len(s.Fleet) > maxGroups {
		v.errorf("fleet", "has %d groups; the limit is %d", len(s.Fleet), maxGroups)
	}
	v.uniqueIDs()
	if s.IsSet("profiles") && len(s.Profiles) == 0 {
		v.errorf("profiles", "needs at least one profile")
	}
	for _, name := range slices.Sorted(maps.Keys(s.Profiles)) {
		path := join("profiles", name)
		v.profile(path, name, s.Profiles[name])
		if !used[name] && len(s.Fleet) > 0 {
			v.warnf(path, "defined but no fleet group uses it")
		}
	}
	v.cloud()
	for i, e := range s.Events {
		v.event(index("events", i), e)
	}
	v.thresholds()
}

func (v *validator) target() {
	t := &v.s.Target
	switch t.Kind {
	case TargetEmbedded:
		if err := checkHostName(t.HostName); err != nil {
			v.errorf("target.host_name", "%v", err)
		}
	case TargetIoTHub:
		if t.ConnectionStringEnv != "" && !envRE.MatchString(t.ConnectionStringEnv) {
			v.errorf("target.connection_string_env", "must be the name of an environment variable, such as IOTHUB_SERVICE_CONNECTION_STRING (got %q)", clip(t.ConnectionStringEnv))
		}
	case TargetMQTT:
		if t.Broker != "" {
			if err := checkBroker(t.Broker); err != nil {
				v.errorf("target.broker", "%v", err)
			}
		}
		for _, f := range []struct{ key, val string }{{"ca_file", t.CAFile}, {"client_ca_cert", t.ClientCACert}, {"client_ca_key", t.ClientCAKey}} {
			if f.val != "" {
				if err := v.stat(f.val); err != nil {
					v.errorf("target."+f.key, "cannot read %s: %v", clip(f.val), unwrapPathError(err))
				}
			}
		}
		if (t.ClientCACert == "") != (t.ClientCAKey == "") {
			v.errorf("target.client_ca_cert", "client_ca_cert and client_ca_key go together: give both or neither")
		}
		if err := checkTopic(t.TopicUp, false); err != nil {
			v.errorf("target.topic_up", "%v", err)
		}
		if t.TopicDown != "" {
			if err := checkTopic(t.TopicDown, true); err != nil {
				v.errorf("target.topic_down", "%v", err)
			}
		}
	}
	if t.Tier != "" {
		if _, ok := tiers[strings.ToLower(t.Tier)]; !ok {
			v.errorf("target.tier", "must be an IoT Hub tier: free, B1, B2, B3, S1, S2 or S3 (got %q)", clip(t.Tier))
		}
	}
	if v.s.IsSet("target.units") && t.Tier == "" {
		v.errorf("target.units", "counts units of a tier: set tier too")
	}
}

func unwrapPathError(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

func checkHostName(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("must be a host name of 1 to 253 characters (got %q)", clip(h))
	}
	for _, l := range strings.Split(h, ".") {
		if !hostLabelRE.MatchString(l) {
			return fmt.Errorf("must be a host name: letters, digits and hyphens between dots (got %q)", clip(h))
		}
	}
	return nil
}

func checkBroker(b string) error {
	u, err := url.Parse(b)
	if err != nil || u.Host == "" {
		return fmt.Errorf("must be a URL such as mqtts://broker.example.com:8883 (got %q)", clip(b))
	}
	switch u.Scheme {
	case "mqtt", "mqtts", "tcp", "ssl", "tls", "ws", "wss":
	default:
		return fmt.Errorf("scheme must be mqtt, mqtts, ws or wss (got %q)", clip(u.Scheme))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port must be from 1 to 65535 (got %q)", p)
		}
	}
	if u.User != nil {
		return errors.New("must not hold credentials")
	}
	return nil
}

func checkTopic(t string, filter bool) error {
	if t == "" {
		return errors.New("must not be empty")
	}
	if len(t) > 65535 {
		return errors.New("is longer than MQTT allows (65535 bytes)")
	}
	if !filter && strings.ContainsAny(t, "+#") {
		return fmt.Errorf("is where devices publish, so it cannot hold the wildcards + or # (got %q)", clip(t))
	}
	rest := t
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("has a { without its } (got %q)", clip(t))
		}
		if name := rest[i+1 : i+j]; name != "device" {
			return fmt.Errorf("the only placeholder is {device} (got {%s})", clip(name))
		}
		rest = rest[i+j+1:]
	}
	return nil
}

func (v *validator) profile(path, name string, p *Profile) {
	s := v.s
	if !nameRE.MatchString(name) {
		v.errorf(path, "profile names are 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit (got %q)", clip(name))
	}
	set := func(key string) bool { return s.IsSet(sub(path, key)) }
	proto := p.Protocol
	if !protoIn(proto, knownProtos) {
		return // the decoder reported it, or it is missing
	}
	switch {
	case s.Target.Kind == TargetMQTT && proto != protocols.GenericMQTT:
		v.errorf(join(path, "protocol"), "target kind mqtt is a generic broker, which only protocol mqtt-generic talks to (got %s)", proto)
	case s.Target.Kind != TargetMQTT && proto == protocols.GenericMQTT && s.IsSet("target.kind"):
		v.errorf(join(path, "protocol"), "mqtt-generic talks to a generic MQTT broker: set target kind mqtt (it is %s)", s.Target.Kind)
	case s.Target.Kind != TargetMQTT && proto == protocols.GenericMQTT:
		v.errorf(join(path, "protocol"), "mqtt-generic talks to a generic MQTT broker: add target: {kind: mqtt, broker: …}")
	}
	switch {
	case p.Auth == AuthX509 && proto == protocols.EventHubsHTTPS:
		v.errorf(join(path, "auth"), "Event Hubs has no X.509 device authentication; use sas")
	case p.Auth == AuthNone && proto != protocols.GenericMQTT:
		v.errorf(join(path, "auth"), "none is only for mqtt-generic; IoT Hub needs sas or x509")
	case p.Auth == AuthSAS && proto == protocols.GenericMQTT:
		v.errorf(join(path, "auth"), "a generic broker does not check SAS tokens; use x509 or none")
	}
	if p.Auth != AuthSAS {
		for _, k := range []string{"token_ttl", "renew_at"} {
			if set(k) {
				v.errorf(join(path, k), "applies to sas auth only (auth is %s)", p.Auth)
			}
		}
	}
	if protoIn(proto, hubMQTT) && s.Target.Kind != TargetMQTT && p.KeepAlive.D() > iothub.MaxMQTTIdle*2/3 {
		v.warnf(join(path, "keep_alive"), "IoT Hub closes a connection idle for 1.5 × keep-alive, at most %s, so above %s it drops idle devices",
			Duration(iothub.MaxMQTTIdle), Duration(iothub.MaxMQTTIdle*2/3))
	}
	if nat := p.Link.Profile.NATIdleTimeout; protoIn(proto, mqttFamily) && nat > 0 && p.KeepAlive.D() > nat {
		v.warnf(join(path, "keep_alive"), "is longer than the link's NAT idle time-out (%s): the carrier drops idle connections before the keep-alive", Duration(nat))
	}
	if p.TLS.Version == "1.3" && p.TLS.MaxVersion == "1.2" {
		if set("tls.max_version") {
			v.errorf(sub(path, "tls.version"), "1.3 is above max_version 1.2")
		} else {
			v.errorf(sub(path, "tls.version"), "1.3 is above the default max_version 1.2: set max_version: \"1.3\" too")
		}
	}
	if proto == protocols.EventHubsHTTPS && set("https.c2d_poll") {
		v.errorf(join(path, "https.c2d_poll"), "Event Hubs has no cloud-to-device messages to poll")
	}
	if p.APIVersion != "" && !apiVersionRE.MatchString(p.APIVersion) {
		v.errorf(join(path, "api_version"), "must be a date such as %s (got %q)", iothub.APIVersion, clip(p.APIVersion))
	}
	if p.ModelID != "" && !dtmiRE.MatchString(p.ModelID) {
		v.errorf(join(path, "model_id"), "must be a DTMI such as dtmi:com:example:Thermostat;1 (got %q)", clip(p.ModelID))
	}
	if p.EventHub != "" && !nameRE.MatchString(p.EventHub) {
		v.errorf(join(path, "event_hub"), "must be an event hub name: letters, digits, '.', '-' and '_' (got %q)", clip(p.EventHub))
	}
	if p.Link.Custom {
		if err := p.Link.Profile.Validate(); err != nil {
			v.linkErrors(join(path, "link"), err)
		}
	}
	if p.DataPlan != nil && p.DataPlan.Size <= 0 && set("data_plan") {
		v.errorf(join(path, "data_plan"), "must be positive (got %q)", p.DataPlan.String())
	}
	if p.Firmware == "" && set("firmware_limits") {
		v.errorf(join(path, "firmware_limits"), "bounds a firmware instance, but the profile names no firmware")
	}
	if p.Firmware != "" && p.FirmwareLimits.Memory%(64<<10) != 0 {
		v.errorf(join(join(path, "firmware_limits"), "memory"), "must be a whole number of 64 KiB wasm pages, such as 512KB or 1MB (got %s)", p.FirmwareLimits.Memory)
	}
	if p.Firmware != "" {
		if p.Behaviour != nil {
			v.errorf(join(path, "firmware"), "firmware and behaviour exclude each other: the firmware module decides what the device does")
		}
		if strings.HasPrefix(p.Firmware, examples.Prefix) {
			if _, err := examples.Read(p.Firmware); err != nil {
				v.errorf(join(path, "firmware"), "%v", err)
			}
		} else if !strings.HasSuffix(p.Firmware, ".wasm") {
			v.errorf(join(path, "firmware"), "must be a WebAssembly module (.wasm) (got %q)", clip(p.Firmware))
		} else if err := v.stat(p.Firmware); err != nil {
			v.errorf(join(path, "firmware"), "cannot read %s: %v", clip(p.Firmware), unwrapPathError(err))
		}
	}
	if p.Behaviour != nil {
		v.behaviour(join(path, "behaviour"), p)
	}
}

// linkErrors places network.Profile.Validate's errors ("field: must be …
// (got x)") on the link's keys.
func (v *validator) linkErrors(path string, err error) {
	inner := errors.Unwrap(err)
	var list []error
	if j, ok := inner.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		field, msg, ok := strings.Cut(e.Error(), ": ")
		if !ok || strings.Contains(field, " ") {
			v.errorf(path, "%v", e)
			continue
		}
		fp := linkFieldPath(path, field)
		// Show the value as the file wrote it ("150%"), not as the link
		// model holds it (1.5).
		if i := strings.LastIndex(msg, " (got "); i >= 0 {
			if raw, ok := v.raw[fp]; ok {
				msg = msg[:i] + " (got " + strconv.Quote(clip(raw)) + ")"
			}
		}
		v.errorf(fp, "%s", msg)
	}
}

func (v *validator) behaviour(path string, p *Profile) {
	b := p.Behaviour
	proto := p.Protocol
	set := func(key string) bool { return v.s.IsSet(sub(path, key)) }
	if t := b.Telemetry; t != nil {
		tp := join(path, "telemetry")
		if t.Batch > 1 && !protoIn(proto, canBatch) {
			v.errorf(join(tp, "batch"), "batches are for %s; %s sends one message at a time", protoList(canBatch), proto)
		}
		pl := t.Payload
		pp := join(tp, "payload")
		switch {
		case pl.Kind == PayloadBytes && pl.Size <= 0:
			v.errorf(join(pp, "size"), "a bytes payload needs a size, e.g. 120B")
		case pl.Kind == PayloadJSON && len(pl.Fields) == 0 && pl.Size <= 0:
			v.errorf(pp, "a json payload needs fields, a size to pad to, or both")
		}
		if t.Batch > 1 && pl.Size > 0 && int64(t.Batch)*int64(pl.Size) > iothub.MaxD2CSize {
			v.errorf(join(tp, "batch"), "%d messages of %s make a batch over IoT Hub's %s limit", t.Batch, pl.Size, ByteSize(iothub.MaxD2CSize))
		}
		if proto == protocols.GenericMQTT {
			for _, k := range []string{"properties", "content_type"} {
				if set("telemetry." + k) {
					v.errorf(join(tp, k), "MQTT 3.1.1 to a generic broker carries no message properties")
				}
			}
		}
		for k := range t.Properties {
			if k == "" || strings.HasPrefix(k, "$") {
				v.errorf(join(tp, "properties"), "application property names must be non-empty and not start with $ (got %q)", clip(k))
			}
		}
	}
	if !protoIn(proto, canC2D) && set("on_c2d") {
		v.errorf(join(path, "on_c2d"), "%s devices receive no cloud-to-device messages", proto)
	} else if protoIn(proto, mqttFamily) && b.OnC2D != "complete" && set("on_c2d") {
		v.errorf(join(path, "on_c2d"), "MQTT can only complete cloud-to-device messages: its PUBACK is the completion (got %s)", b.OnC2D)
	}
	if !protoIn(proto, canTwin) {
		for _, k := range []string{"on_method", "on_desired", "reported_on_connect"} {
			if set(k) {
				what := "direct methods"
				if k != "on_method" {
					what = "device twins"
				}
				v.errorf(join(path, k), "%s devices have no %s; they are for %s", proto, what, protoList(canTwin))
			}
		}
	}
	if err := checkJSON(b.OnMethod.Payload, iothub.MaxMethodPayload); err != nil {
		v.errorf(sub(path, "on_method.payload"), "%v", err)
	}
	if b.ReportedOnConnect != nil {
		v.twinPatch(join(path, "reported_on_connect"), b.ReportedOnConnect)
	}
	if b.Reconnect.Max < b.Reconnect.Initial {
		v.errorf(sub(path, "reconnect.max"), "is shorter than initial (%s)", b.Reconnect.Initial)
	}
	if sl := b.Sleep; sl != nil && sl.Every > 0 && sl.For >= sl.Every {
		v.errorf(sub(path, "sleep.for"), "must be shorter than every (%s): the device needs time awake", sl.Every)
	}
}

// checkJSON checks a JSON text the device or service sends.
func checkJSON(s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("is %d bytes; IoT Hub allows %s", len(s), ByteSize(limit))
	}
	if !json.Valid([]byte(s)) {
		return fmt.Errorf("must be JSON, such as {} or {\"ok\":true} (got %q)", clip(s))
	}
	return nil
}

// twinPatch checks a desired or reported patch against IoT Hub's twin rules.
func (v *validator) twinPatch(path string, patch map[string]any) {
	if len(patch) == 0 {
		v.errorf(path, "is empty")
		return
	}
	b, err := json.Marshal(patch)
	if err != nil {
		v.errorf(path, "cannot be JSON: %v", err)
		return
	}
	if len(b) > iothub.MaxTwinSection {
		v.errorf(path, "is %d bytes as JSON; a twin section holds at most %s", len(b), ByteSize(iothub.MaxTwinSection))
	}
	var walk func(p string, x any, depth int)
	walk = func(p string, x any, depth int) {
		m, ok := x.(map[string]any)
		if !ok {
			return
		}
		if depth > 10 {
			v.errorf(p, "nests deeper than the 10 levels a twin allows")
			return
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if k == "" || strings.ContainsAny(k, ". $") {
				v.errorf(join(p, k), "twin property names cannot be empty or hold '.', '$' or spaces")
				continue
			}
			walk(join(p, k), m[k], depth+1)
		}
	}
	walk(path, patch, 1)
}

func (v *validator) group(i int, g *Group) {
	s := v.s
	path := index("fleet", i)
	if g.Name != "" {
		if !nameRE.MatchString(g.Name) {
			v.errorf(join(path, "name"), "group names are 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit (got %q)", clip(g.Name))
		}
		if _, dup := v.groups[g.Name]; dup {
			v.errorf(join(path, "name"), "another group is named %s already", g.Name)
		} else {
			v.groups[g.Name] = g
		}
	}
	if g.Profile != "" && s.Profiles != nil {
		if _, ok := s.Profiles[g.Profile]; !ok {
			names := slices.Sorted(maps.Keys(s.Profiles))
			v.errorf(join(path, "profile"), "no profile is named %s; the profiles are %s%s", clip(g.Profile), strings.Join(names, ", "), suggestion(g.Profile, names))
		}
	}
	if g.Count > 0 {
		before := v.members
		// Saturating: counts come from the file and may be near MaxInt.
		v.members = min(v.members, MaxDevices+1) + min(g.Count, MaxDevices+1)
		if v.members > MaxDevices && before <= MaxDevices {
			v.errorf(join(path, "count"), "brings the fleet above %d devices, the most a scenario holds (run more scenarios, or shards of one)", MaxDevices)
		}
	}
	if g.Name != "" && g.Count > 0 {
		ip, err := compileIDPattern(g.IDPattern, g.Name, s.Seed)
		switch {
		case err != nil:
			v.errorf(join(path, "id_pattern"), "%v", err)
		case !ip.hasIndex && g.Count > 1:
			v.errorf(join(path, "id_pattern"), "has no {index}, so all %d devices would be %s", g.Count, clip(ip.prefix))
		default:
			for _, n := range []int{0, g.Count - 1} {
				if err := iothub.ValidateID(ip.id(n)); err != nil {
					v.errorf(join(path, "id_pattern"), "makes ids IoT Hub rejects: %v", err)
					break
				}
			}
		}
	}
	a := g.Arrival
	ap := join(path, "arrival")
	if a.Kind == ArrivalPoisson && s.IsSet(join(ap, "rate")) && a.Rate.PerSecond() <= 0 {
		v.errorf(join(ap, "rate"), "must be positive (got %q)", a.Rate.String())
	}
	if s.Duration > 0 && a.At >= s.Duration {
		v.errorf(join(ap, "at"), "is not before the end of the run (duration %s)", s.Duration)
	} else if s.Duration > 0 {
		switch {
		case a.Kind == ArrivalRamp && a.At+a.Over > s.Duration:
			v.warnf(join(ap, "over"), "the ramp ends after the run (duration %s): the devices due later never start", s.Duration)
		case a.Kind == ArrivalPoisson && g.Count > 0 && a.Rate.PerSecond() > 0 &&
			a.At.D()+time.Duration(float64(g.Count)/a.Rate.PerSecond()*float64(time.Second)) > s.Duration.D():
			v.warnf(join(ap, "rate"), "%d arrivals at %s take longer than the run (duration %s) on average: some devices never start", g.Count, a.Rate, s.Duration)
		}
	}
}

// uniqueIDs checks that no two groups make the same device id, without
// listing every id: zero-padded indices are one-to-one, so an id of one group
// is tested for membership in another by parsing it back.
func (v *validator) uniqueIDs() {
	type compiled struct {
		i  int
		g  *Group
		ip idPattern
	}
	var cs []compiled
	for i, g := range v.s.Fleet {
		if g.Name == "" || g.Count <= 0 || v.members > MaxDevices || v.groups[g.Name] != g {
			continue // a duplicate name is reported already; its ids clash for the same reason
		}
		ip, err := compileIDPattern(g.IDPattern, g.Name, v.s.Seed)
		if err != nil || !ip.hasIndex && g.Count > 1 {
			continue
		}
		cs = append(cs, compiled{i, g, ip})
	}
	var buf []byte
	for a := range cs {
		for b := a + 1; b < len(cs); b++ {
			x, y := cs[a], cs[b]
			if !x.ip.mayOverlap(y.ip) {
				continue
			}
			small, big := x, y
			if big.g.Count < small.g.Count {
				small, big = big, small
			}
			for n := range small.g.Count {
				buf = small.ip.appendID(buf[:0], n)
				if big.ip.has(buf, big.g.Count) {
					v.errorf(join(index("fleet", y.i), "id_pattern"), "makes id %s, which group %s (fleet[%d]) makes too; ids must be unique across the fleet", clip(string(buf)), x.g.Name, x.i)
					break
				}
			}
		}
	}
}

func (v *validator) cloud() {
	c := v.s.Cloud
	if c == nil {
		return
	}
	if v.s.Target.Kind == TargetMQTT {
		v.errorf("cloud", "cloud-side drivers need an IoT Hub target (embedded or iothub); a generic broker has no service API")
		return
	}
	if c.C2D != nil {
		v.rate("cloud.c2d.rate", c.C2D.Rate)
		v.recipients("cloud.c2d.to", c.C2D.To, canC2D, "cloud-to-device messages")
	}
	if m := c.Methods; m != nil {
		v.rate("cloud.methods.rate", m.Rate)
		v.recipients("cloud.methods.to", m.To, canTwin, "direct methods")
		if m.Name != "" && (len(m.Name) > 128 || strings.ContainsAny(m.Name, "/$ ")) {
			v.errorf("cloud.methods.name", "method names are up to 128 characters without '/', '$' or spaces (got %q)", clip(m.Name))
		}
		if err := checkJSON(m.Payload, iothub.MaxMethodPayload); err != nil {
			v.errorf("cloud.methods.payload", "%v", err)
		}
	}
	if d := c.Desired; d != nil {
		v.rate("cloud.desired.rate", d.Rate)
		v.recipients("cloud.desired.to", d.To, canTwin, "desired-property updates")
		if d.Patch != nil {
			v.twinPatch("cloud.desired.patch", d.Patch)
		}
	}
}

func (v *validator) rate(path string, r Rate) {
	if v.s.IsSet(path) && r.PerSecond() <= 0 {
		v.errorf(path, "must be positive (got %q)", r.String())
	}
}

// recipients checks a driver's "to": all, or a group whose devices can
// receive what it sends.
func (v *validator) recipients(path, to string, can []protocols.Protocol, what string) {
	if to == AllDevices {
		for _, g := range v.s.Fleet {
			if p := v.s.Profiles[g.Profile]; p != nil && protoIn(p.Protocol, can) {
				return
			}
		}
		if len(v.s.Fleet) > 0 {
			v.errorf(path, "no device in the fleet can receive %s; they need %s", what, protoList(can))
		}
		return
	}
	g, ok := v.groups[to]
	if !ok {
		names := slices.Sorted(maps.Keys(v.groups))
		v.errorf(path, "must be all or a group name; no group is named %s%s", clip(to), suggestion(to, append(names, AllDevices)))
		return
	}
	if p := v.s.Profiles[g.Profile]; p != nil && protoIn(p.Protocol, knownProtos) && !protoIn(p.Protocol, can) {
		v.errorf(path, "group %s uses %s, which cannot receive %s; they need %s", to, p.Protocol, what, protoList(can))
	}
}

func (v *validator) event(path string, e *Event) {
	s := v.s
	if s.Duration > 0 && e.At > s.Duration {
		v.errorf(join(path, "at"), "is after the end of the run (duration %s)", s.Duration)
	}
	switch e.Kind {
	case EventOutage:
		if s.IsSet(join(path, "fraction")) && !(e.Fraction > 0 && e.Fraction <= 100) {
			v.errorf(join(path, "fraction"), "must be more than 0%% and at most 100%% (got %q)", e.Fraction.String())
		}
		if e.Group != "" {
			if _, ok := v.groups[e.Group]; !ok {
				names := slices.Sorted(maps.Keys(v.groups))
				v.errorf(join(path, "group"), "no group is named %s; the groups are %s%s", clip(e.Group), strings.Join(names, ", "), suggestion(e.Group, names))
			}
		}
		n := v.members
		if g, ok := v.groups[e.Group]; ok {
			n = g.Count
		}
		if e.Fraction > 0 && e.Fraction <= 100 && n > 0 && math.Round(e.Fraction.Fraction()*float64(n)) == 0 {
			v.warnf(join(path, "fraction"), "%s of %d devices rounds to none, so the outage hits no device", e.Fraction, n)
		}
		if s.Duration > 0 && e.At <= s.Duration && e.Duration > 0 && e.At+e.Duration >= s.Duration {
			v.warnf(join(path, "duration"), "the outage lasts past the end of the run (duration %s), so the reconnect storm is not measured", s.Duration)
		}
	case EventHubRestart:
		if s.Target.Kind != TargetEmbedded {
			v.errorf(join(path, "kind"), "only the embedded hub can be restarted (target kind is %s)", s.Target.Kind)
		}
	}
}

func (v *validator) thresholds() {
	keys := slices.Sorted(maps.Keys(v.s.Thresholds))
	for _, key := range keys {
		path := join("thresholds", key)
		k, err := metricdef.ParseKey(key)
		if err != nil {
			v.errorf(path, "%v", err)
			continue
		}
		for tag, val := range k.Tags {
			switch tag {
			case metricdef.TagGroup:
				if _, ok := v.groups[val]; !ok {
					v.errorf(path, "tag group:%s names no group in the fleet%s", val, suggestion(val, slices.Sorted(maps.Keys(v.groups))))
				}
			case metricdef.TagProfile:
				if _, ok := v.s.Profiles[val]; !ok {
					v.errorf(path, "tag profile:%s names no profile%s", val, suggestion(val, slices.Sorted(maps.Keys(v.s.Profiles))))
				}
			}
		}
		exprs := v.s.Thresholds[key]
		if len(exprs) == 0 {
			v.errorf(path, "needs at least one expression, such as \"p(95) < 2s\"")
		}
		for i, x := range exprs {
			e, err := metricdef.ParseExpr(x)
			if err == nil {
				_, err = k.Threshold(e)
			}
			if err != nil {
				v.errorf(index(path, i), "%v", err)
			}
		}
	}
}
