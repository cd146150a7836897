package scenarios

import (
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/protocols"
)

// Scenario is a scenario file as decoded, defaults filled. It is checked but
// not compiled: Compile turns it into a Plan, which is what a run executes.
type Scenario struct {
	Version     int                 `json:"version" req:"" doc:"Schema version of the file; only 1 exists."`
	Name        string              `json:"name" doc:"Name of the scenario in reports. Default: the file name without .yaml."`
	Description string              `json:"description,omitempty" doc:"What the scenario models, for people reading reports."`
	Seed        uint64              `json:"seed" doc:"Seed of every random choice: device seeds, arrival gaps, outage picks, payload values. Same seed, same run."`
	Duration    Duration            `json:"duration" req:"" gt:"0" doc:"How long the run lasts, e.g. 2m or 1h30m or 7d."`
	Target      Target              `json:"target" doc:"Where devices connect: the embedded IoT Hub emulator (default), a real IoT Hub, or a generic MQTT broker."`
	Profiles    map[string]*Profile `json:"profiles" req:"" doc:"Device profiles by name: protocol, authentication, link, data plan and behaviour."`
	Fleet       []*Group            `json:"fleet" req:"" doc:"Groups of devices; each names a profile."`
	Cloud       *Cloud              `json:"cloud,omitempty" doc:"Cloud-side drivers run against the target: cloud-to-device messages, direct methods, desired-property updates."`
	Events      []*Event            `json:"events,omitempty" doc:"Fleet-wide events at set times, such as a cell outage followed by the reconnect storm."`
	Thresholds  map[string][]string `json:"thresholds,omitempty" doc:"Pass/fail criteria, k6 style: metric{tag:value} → list of expressions such as \"p(95) < 150KB\"."`

	// File is the file the scenario was read from, as named to Load; Dir is
	// the directory relative paths in it (firmware, certificates) resolve
	// against.
	File string `json:"-"`
	Dir  string `json:"-"`

	pos map[string]pos
}

func (s *Scenario) setDefaults() {
	s.Seed = 1
	s.Target.setDefaults()
	s.Target.setKindDefaults(s.Target.Kind)
}

// IsSet reports whether the file set the value at path (e.g.
// "profiles.fipy.keep_alive"), as opposed to it holding its default.
func (s *Scenario) IsSet(path string) bool {
	_, ok := s.pos[path]
	return ok
}

// Target kinds.
const (
	TargetEmbedded = "embedded"
	TargetIoTHub   = "iothub"
	TargetMQTT     = "mqtt"
)

// DefaultHostName is the embedded emulator's host name. Byte counts depend on
// its length, which is typical of a real hub's.
const DefaultHostName = "catmsim.azure-devices.net"

// Target is where devices connect.
type Target struct {
	Kind string `json:"kind" disc:"" enum:"embedded,iothub,mqtt" doc:"embedded: the IoT Hub emulator inside sim, on loopback; iothub: a real Azure IoT Hub; mqtt: a generic MQTT broker."`
	// embedded
	HostName  string `json:"host_name,omitempty" only:"embedded" doc:"The emulator's host name; byte counts depend on its length."`
	Transport string `json:"transport,omitempty" only:"embedded" enum:"memory,tcp" doc:"memory: in-process pipes, no file descriptors; tcp: real loopback sockets."`
	// embedded and iothub
	Tier  string `json:"tier,omitempty" only:"embedded,iothub" doc:"IoT Hub tier whose quotas apply: free, B1, B2, B3, S1, S2 or S3. The emulator throttles like it; against a real hub, provisioning is paced to it."`
	Units int    `json:"units,omitempty" only:"embedded,iothub" min:"1" doc:"Number of IoT Hub units of the tier."`
	// iothub
	ConnectionStringEnv string `json:"connection_string_env,omitempty" only:"iothub" req:"" doc:"Environment variable holding a service (shared access policy) connection string with registry rights."`
	Provision           bool   `json:"provision,omitempty" only:"iothub" doc:"Create the devices in the hub's registry before the run."`
	// mqtt
	Broker       string `json:"broker,omitempty" only:"mqtt" req:"" doc:"Broker URL: mqtt://, mqtts://, ws:// or wss:// host and port."`
	CAFile       string `json:"ca_file,omitempty" only:"mqtt" doc:"PEM file of the CA that signed the broker's certificate, relative to the scenario file. Default: the system's roots."`
	ClientCACert string `json:"client_ca_cert,omitempty" only:"mqtt" doc:"PEM certificate of the CA that issues device certificates (x509 auth), relative to the scenario file. With client_ca_key; without both, the run makes a CA and writes its certificate beside the report."`
	ClientCAKey  string `json:"client_ca_key,omitempty" only:"mqtt" doc:"PEM private key of client_ca_cert."`
	TopicUp      string `json:"topic_up,omitempty" only:"mqtt" doc:"Topic devices publish telemetry to; {device} is the device id."`
	TopicDown    string `json:"topic_down,omitempty" only:"mqtt" doc:"Topic devices subscribe to for commands; {device} is the device id. Empty: no subscription."`
}

func (t *Target) setDefaults() { t.Kind = TargetEmbedded }

func (t *Target) setKindDefaults(kind string) {
	switch kind {
	case TargetEmbedded:
		t.HostName, t.Transport, t.Units = DefaultHostName, "memory", 1
	case TargetIoTHub:
		t.Provision, t.Units = true, 1
	case TargetMQTT:
		t.TopicUp = "measures/{device}"
	}
}

// Auth methods.
const (
	AuthSAS  = "sas"
	AuthX509 = "x509"
	AuthNone = "none"
)

// Profile is how a kind of device connects and behaves.
type Profile struct {
	Protocol protocols.Protocol `json:"protocol" disc:"" req:"" enum:"mqtt,mqtt-ws,amqp,amqp-ws,https,eventhubs-https,mqtt-generic" doc:"Device-side transport."`
	Auth     string             `json:"auth" enum:"sas,x509,none" doc:"sas: shared access tokens signed with the device key; x509: a client certificate; none: no credentials (generic brokers only)."`
	TokenTTL Duration           `json:"token_ttl" gt:"0" doc:"Lifetime of each SAS token (sas auth)."`
	RenewAt  float64            `json:"renew_at" gt:"0" lt:"1" doc:"Fraction of the token lifetime after which it is renewed: MQTT reconnects, AMQP puts a new token on the live connection (sas auth)."`
	Link     Link               `json:"link" doc:"The device's LTE-M link: a built-in profile name (good, typical, poor) or a mapping of base and overrides."`
	DataPlan *DataPlan          `json:"data_plan,omitempty" doc:"The SIM's data budget, e.g. 5MB/month; reports compare projected use with it."`
	Billing  *Billing           `json:"billing,omitempty" doc:"How the carrier rounds billed bytes."`

	KeepAlive    Duration     `json:"keep_alive" only:"mqtt,mqtt-ws,mqtt-generic,amqp,amqp-ws" min:"0s" doc:"MQTT keep-alive, or the AMQP idle time-out the device advertises. 0 turns MQTT keep-alive off."`
	CleanSession bool         `json:"clean_session,omitempty" only:"mqtt,mqtt-ws,mqtt-generic" doc:"MQTT clean session."`
	QoS          int          `json:"qos" only:"mqtt,mqtt-ws,mqtt-generic" min:"0" max:"1" doc:"MQTT QoS of telemetry: 0 or 1 (IoT Hub has no QoS 2)."`
	TLS          TLS          `json:"tls" doc:"TLS versions and session resumption."`
	HTTPS        HTTPSOptions `json:"https,omitzero" only:"https,eventhubs-https" doc:"HTTPS connection handling."`
	EventHub     string       `json:"event_hub,omitempty" only:"eventhubs-https" req:"" doc:"The event hub (entity) to post to."`
	APIVersion   string       `json:"api_version,omitempty" only:"mqtt,mqtt-ws,amqp,amqp-ws,https,eventhubs-https" doc:"api-version the device sends."`
	ModelID      string       `json:"model_id,omitempty" only:"mqtt,mqtt-ws,amqp,amqp-ws" doc:"IoT Plug and Play model id (DTMI) announced on connect."`

	Behaviour *Behaviour `json:"behaviour,omitempty" doc:"What the device does, declaratively. Exclusive with firmware; a profile with neither connects and stays idle."`
	Firmware  string     `json:"firmware,omitempty" doc:"A WebAssembly module to run as the device's firmware instead of a behaviour: a path relative to the scenario file, or a built-in example (example:c/sensornode.wasm, example:assemblyscript/sensornode.wasm)."`
	// FirmwareLimits bound each device's firmware instance.
	FirmwareLimits FirmwareLimits `json:"firmware_limits,omitzero" doc:"Limits of each device's firmware instance (with firmware only)."`
}

// FirmwareLimits bound one device's firmware instance; a module that goes
// past them fails that device.
type FirmwareLimits struct {
	Memory      ByteSize `json:"memory" min:"64KB" max:"64MB" doc:"Most linear memory an instance may have, in whole 64 KiB wasm pages (512KB: about an ESP32's SRAM)."`
	CallTimeout Duration `json:"call_timeout" gt:"0s" max:"60s" doc:"Longest one call into the firmware may run before it fails the device."`
}

func (l *FirmwareLimits) setDefaults() {
	l.Memory, l.CallTimeout = 512<<10, Duration(time.Second)
}

func (p *Profile) setDefaults() {
	p.FirmwareLimits.setDefaults()
	p.Auth = AuthSAS
	p.TokenTTL = Duration(time.Hour)
	p.RenewAt = 0.8
	p.Link = builtinLink("typical")
	p.TLS = TLS{Version: "1.2", MaxVersion: "1.2"}
}

func (p *Profile) setKindDefaults(protocol string) {
	switch protocols.Protocol(protocol) {
	case protocols.MQTT, protocols.MQTTWebSocket:
		p.KeepAlive, p.QoS = Duration(240*time.Second), 1
		p.APIVersion = iothub.APIVersion
	case protocols.GenericMQTT:
		p.KeepAlive, p.QoS = Duration(240*time.Second), 1
		p.Auth = AuthNone
	case protocols.AMQP, protocols.AMQPWebSocket:
		p.KeepAlive = Duration(240 * time.Second)
		p.APIVersion = iothub.APIVersion
	case protocols.HTTPS:
		p.APIVersion = iothub.APIVersion
		p.HTTPS.C2DPoll = Duration(25 * time.Minute)
	case protocols.EventHubsHTTPS:
		p.APIVersion = "2014-01"
	}
}

// TLS are the TLS choices devices in the field vary.
type TLS struct {
	Version    string `json:"version" enum:"1.2,1.3" doc:"Lowest TLS version the device offers."`
	MaxVersion string `json:"max_version" enum:"1.2,1.3" doc:"Highest TLS version the device offers. IoT Hub speaks 1.2, so that is the default; 1.3 where the target offers it."`
	Resumption bool   `json:"resumption" doc:"Keep a session cache so reconnects resume the TLS session, where the server allows it (IoT Hub does not)."`
}

// HTTPSOptions are HTTPS connection choices.
type HTTPSOptions struct {
	NewConnectionPerRequest bool     `json:"new_connection_per_request" doc:"Open a new TLS connection for every request, as MicroPython's urequests does."`
	C2DPoll                 Duration `json:"c2d_poll,omitempty" gt:"0" doc:"How often an HTTPS device polls for cloud-to-device messages (IoT Hub asks for 25 minutes or more)."`
}

// Billing is how a carrier rounds what it bills.
type Billing struct {
	Increment ByteSize `json:"increment" req:"" gt:"0" doc:"Billing increment: usage is rounded up to a multiple of it."`
	Per       string   `json:"per" enum:"session,message,month" doc:"What is rounded: each data session, each message, or the month's total."`
}

func (b *Billing) setDefaults() { b.Per = "session" }

// Behaviour is what a device does, declared.
type Behaviour struct {
	Telemetry         *Telemetry     `json:"telemetry,omitempty" doc:"Periodic device-to-cloud messages."`
	OnC2D             string         `json:"on_c2d" enum:"complete,abandon,reject" doc:"How the device settles cloud-to-device messages (MQTT can only complete)."`
	OnMethod          MethodResponse `json:"on_method" doc:"How the device answers direct methods."`
	OnDesired         string         `json:"on_desired" enum:"report,ignore" doc:"report: echo each desired-property update as reported properties; ignore: do nothing."`
	ReportedOnConnect map[string]any `json:"reported_on_connect,omitempty" doc:"Reported properties patched after every connect."`
	Reconnect         Reconnect      `json:"reconnect" doc:"Back-off between reconnect attempts."`
	Sleep             *Sleep         `json:"sleep,omitempty" doc:"A sleep/wake cycle: disconnect, radio to PSM, wake, reconnect."`
}

func (b *Behaviour) setDefaults() {
	b.OnC2D, b.OnDesired = "complete", "report"
	b.OnMethod = MethodResponse{Status: 200, Payload: "{}"}
	b.Reconnect = Reconnect{Initial: Duration(time.Second), Max: Duration(5 * time.Minute), Multiplier: 2, Jitter: 20}
}

// Telemetry is a periodic device-to-cloud message.
type Telemetry struct {
	Interval    Duration          `json:"interval" req:"" min:"1s" doc:"Time between sends."`
	Jitter      Percent           `json:"jitter" min:"0%" max:"100%" doc:"Uniform ± spread of each interval, as a percentage of it."`
	Batch       int               `json:"batch" min:"1" doc:"Messages per send; above 1 HTTPS, AMQP and Event Hubs send them as one batch."`
	Payload     Payload           `json:"payload" doc:"The message body."`
	Properties  map[string]string `json:"properties,omitempty" doc:"Application properties on every message."`
	ContentType string            `json:"content_type,omitempty" doc:"Content type system property."`
}

func (t *Telemetry) setDefaults() {
	t.Batch = 1
	t.Payload.setDefaults()
}

// Payload kinds.
const (
	PayloadJSON  = "json"
	PayloadBytes = "bytes"
)

// Payload is a message body: JSON built from field generators, or random bytes.
type Payload struct {
	Kind   string   `json:"kind" disc:"" enum:"json,bytes" doc:"json: an object of generated fields; bytes: random bytes."`
	Size   ByteSize `json:"size,omitempty" min:"0B" max:"256KB" doc:"bytes: the body size; json: pad the object to at least this size."`
	Fields Fields   `json:"fields,omitempty" only:"json" doc:"Field name → generator, in order. Default: seq: sequence."`
}

// A json payload with no fields given carries the sequence number, so the
// hub's store can tell lost messages.
func (p *Payload) setDefaults() {
	p.Kind = PayloadJSON
	p.Fields = Fields{{Name: "seq", Gen: Generator{Kind: GenSequence}}}
}

func (p *Payload) setKindDefaults(kind string) {
	if kind != PayloadJSON {
		p.Fields = nil
	}
}

// MethodResponse is a device's answer to direct methods.
type MethodResponse struct {
	Status  int      `json:"status" min:"0" max:"999" doc:"Status the device returns."`
	Payload string   `json:"payload" doc:"JSON the device returns."`
	Delay   Duration `json:"delay" min:"0s" doc:"Time the device takes before answering."`
}

// Reconnect is an exponential back-off.
type Reconnect struct {
	Initial    Duration `json:"initial" gt:"0s" doc:"First wait."`
	Max        Duration `json:"max" gt:"0s" doc:"Longest wait."`
	Multiplier float64  `json:"multiplier" min:"1" doc:"Growth of the wait after each failure."`
	Jitter     Percent  `json:"jitter" min:"0%" max:"100%" doc:"Uniform ± spread of each wait."`
}

// Sleep is a sleep/wake cycle.
type Sleep struct {
	Every Duration `json:"every" req:"" gt:"0s" doc:"Length of one cycle."`
	For   Duration `json:"for" req:"" gt:"0s" doc:"Time asleep in each cycle."`
}

// Group is a set of devices sharing a profile.
type Group struct {
	Name      string  `json:"name" req:"" doc:"Unique name; reports break results down by it."`
	Profile   string  `json:"profile" req:"" doc:"Name of the profile its devices use."`
	Count     int     `json:"count" req:"" min:"1" doc:"Number of devices."`
	IDPattern string  `json:"id_pattern" doc:"Device ids: {group}, {index} or {index:05} (zero-padded, 0-based within the group), {seed}."`
	Arrival   Arrival `json:"arrival" doc:"When devices first connect."`
}

func (g *Group) setDefaults() {
	g.IDPattern = "{group}-{index:05}"
	g.Arrival.setDefaults()
}

// Arrival kinds.
const (
	ArrivalRamp      = "ramp"
	ArrivalPoisson   = "poisson"
	ArrivalAllAtOnce = "all_at_once"
)

// Arrival is when a group's devices first connect.
type Arrival struct {
	Kind string   `json:"kind" disc:"" enum:"ramp,poisson,all_at_once" doc:"ramp: evenly over a span; poisson: random gaps at a mean rate; all_at_once: together, as after an outage."`
	At   Duration `json:"at" min:"0s" doc:"When arrivals begin, from the start of the run."`
	Over Duration `json:"over,omitempty" only:"ramp" req:"" gt:"0s" doc:"Span the ramp spreads the devices over."`
	Rate Rate     `json:"rate,omitzero" only:"poisson" req:"" doc:"Mean arrival rate, e.g. 5/s."`
}

func (a *Arrival) setDefaults() { a.Kind = ArrivalAllAtOnce }

// Cloud holds the cloud-side drivers.
type Cloud struct {
	C2D     *C2DDriver     `json:"c2d,omitempty" doc:"Cloud-to-device messages."`
	Methods *MethodDriver  `json:"methods,omitempty" doc:"Direct method calls."`
	Desired *DesiredDriver `json:"desired,omitempty" doc:"Desired-property updates."`
}

// AllDevices is the "to" that targets every device that can receive.
const AllDevices = "all"

// C2DDriver sends cloud-to-device messages.
type C2DDriver struct {
	Rate Rate     `json:"rate" req:"" doc:"Messages per targeted device, e.g. 1/10min."`
	Size ByteSize `json:"size" gt:"0" max:"64KB" doc:"Body size."`
	Ack  string   `json:"ack" enum:"none,positive,negative,full" doc:"Delivery feedback the service asks for."`
	TTL  Duration `json:"ttl" gt:"0s" max:"48h" doc:"Time the message may wait in the device's queue."`
	To   string   `json:"to" doc:"all, or a group name."`
}

func (c *C2DDriver) setDefaults() {
	c.Size, c.Ack, c.TTL, c.To = 64, "none", Duration(time.Hour), AllDevices
}

// MethodDriver invokes direct methods.
type MethodDriver struct {
	Rate    Rate     `json:"rate" req:"" doc:"Calls per targeted device, e.g. 1/h."`
	Name    string   `json:"name" req:"" doc:"Method name."`
	Payload string   `json:"payload" doc:"JSON request payload."`
	Timeout Duration `json:"timeout" min:"5s" max:"300s" doc:"Response time-out."`
	To      string   `json:"to" doc:"all, or a group name."`
}

func (m *MethodDriver) setDefaults() {
	m.Payload, m.Timeout, m.To = "{}", Duration(30*time.Second), AllDevices
}

// DesiredDriver updates desired properties.
type DesiredDriver struct {
	Rate  Rate           `json:"rate" req:"" doc:"Updates per targeted device, e.g. 1/h."`
	Patch map[string]any `json:"patch" req:"" doc:"Desired-properties patch."`
	To    string         `json:"to" doc:"all, or a group name."`
}

func (m *DesiredDriver) setDefaults() { m.To = AllDevices }

// Event kinds.
const (
	EventOutage     = "outage"
	EventHubRestart = "hub_restart"
)

// Event is something that happens to the fleet at a set time.
type Event struct {
	At       Duration `json:"at" req:"" min:"0s" doc:"When, from the start of the run."`
	Kind     string   `json:"kind" disc:"" req:"" enum:"outage,hub_restart" doc:"outage: the cell goes down for a fraction of devices, then they all reconnect; hub_restart: the embedded hub restarts."`
	Fraction Percent  `json:"fraction,omitempty" only:"outage" req:"" doc:"Share of devices (of the group, or of the fleet) that lose the cell."`
	Duration Duration `json:"duration,omitempty" only:"outage" req:"" gt:"0s" doc:"How long the outage lasts."`
	Group    string   `json:"group,omitempty" only:"outage" doc:"Limit the outage to one group."`
}
