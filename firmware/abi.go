package firmware

import (
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// ABIVersion is the version of the host ABI this package speaks. A module
// states the version it was written for by exporting catmsim_abi_version.
const ABIVersion = 1

// ImportModule is the wasm module name every host function is imported from.
const ImportModule = "catmsim"

// Names of the module's exports.
const (
	ExportMemory     = "memory"
	ExportABIVersion = "catmsim_abi_version"
	ExportAlloc      = "catmsim_alloc"
	ExportInit       = "catmsim_init"
	ExportOnTimer    = "catmsim_on_timer"
	ExportOnWake     = "catmsim_on_wake"
	ExportOnC2D      = "catmsim_on_c2d"
	ExportOnMethod   = "catmsim_on_method"
	ExportOnDesired  = "catmsim_on_desired"
)

// Size limits the host applies to what a module hands it. They are IoT Hub's
// own limits where it has one, so firmware that passes here is not refused by
// the hub for size.
const (
	MaxTelemetryBytes  = 256 << 10 // IoT Hub's device-to-cloud message limit
	MaxPropertiesBytes = 8 << 10   // encoded application properties of one message
	MaxReportedBytes   = 32 << 10  // IoT Hub's limit on a reported-properties document
	MaxResponseBytes   = 128 << 10 // IoT Hub's direct-method payload limit
	MaxLogBytes        = 256       // a log line is cut to this length
)

// maxDelayMillis bounds set_timer and sleep so a duration never overflows
// time.Duration; it is more than a century.
const maxDelayMillis = 1 << 42

// Code is what a host function returns to the module: zero for success, a
// negative value saying why it failed. A module may treat every non-zero
// code alike; the distinctions are there for firmware that backs off on
// throttling or drops what is too large.
type Code int32

// Codes of ABI v1.
const (
	CodeOK           Code = 0
	CodeFailed       Code = -1 // failed for a reason none of the codes below names
	CodeDisconnected Code = -2 // the device is not connected (connecting, dropped, asleep)
	CodeThrottled    Code = -3 // the hub throttled it; try again later
	CodeTooLarge     Code = -4 // larger than the hub (or the host) accepts
	CodeInvalid      Code = -5 // malformed: not JSON, odd property list, bad duration, wrong moment
	CodeUnsupported  Code = -6 // the device's protocol cannot do this (a twin over HTTPS)
)

var codeNames = map[Code]string{
	CodeOK: "ok", CodeFailed: "failed", CodeDisconnected: "disconnected", CodeThrottled: "throttled",
	CodeTooLarge: "too large", CodeInvalid: "invalid", CodeUnsupported: "unsupported",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", int32(c))
}

// Outcome is how firmware settles a cloud-to-device message: the value
// catmsim_on_c2d returns. The numbering is the ABI's.
type Outcome int32

// Outcomes of ABI v1.
const (
	Complete Outcome = 0
	Abandon  Outcome = 1
	Reject   Outcome = 2
)

func (o Outcome) String() string {
	switch o {
	case Complete:
		return "complete"
	case Abandon:
		return "abandon"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("outcome(%d)", int32(o))
}

// Log levels of ABI v1, as the module passes them to log.
const (
	LogDebug int32 = 0
	LogInfo  int32 = 1
	LogWarn  int32 = 2
	LogError int32 = 3
)

// Sensor ids the fleet's simulated sensors answer to. Firmware may read any
// id; what an unknown one returns is the host's choice (NaN by convention).
const (
	SensorTemperature int32 = 0 // °C
	SensorHumidity    int32 = 1 // % relative humidity
	SensorBattery     int32 = 2 // volts
)

// param is one parameter or result of an ABI function, named for the docs and
// for error messages.
type param struct {
	name string
	typ  api.ValueType
}

// signature is an ABI function's wasm type.
type signature struct {
	params  []param
	results []param
}

func i32(name string) param { return param{name, api.ValueTypeI32} }
func i64(name string) param { return param{name, api.ValueTypeI64} }
func f64(name string) param { return param{name, api.ValueTypeF64} }

func (s signature) types() (params, results []api.ValueType) {
	for _, p := range s.params {
		params = append(params, p.typ)
	}
	for _, r := range s.results {
		results = append(results, r.typ)
	}
	return params, results
}

func (s signature) matches(params, results []api.ValueType) bool {
	want, wantResults := s.types()
	return string(want) == string(params) && string(wantResults) == string(results)
}

// String renders the signature as the docs write it:
// (i32 body_ptr, i32 body_len) -> i32 code.
func (s signature) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, p := range s.params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(p.typ) + " " + p.name)
	}
	b.WriteByte(')')
	switch len(s.results) {
	case 0:
	case 1:
		b.WriteString(" -> " + api.ValueTypeName(s.results[0].typ) + " " + s.results[0].name)
	}
	return b.String()
}

// typeString renders a wasm function type found in a module.
func typeString(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	out := "(" + names(params) + ")"
	if len(results) > 0 {
		out += " -> " + names(results)
	}
	return out
}

// entry is a function the host calls in the module.
type entry int

const (
	entryABIVersion entry = iota
	entryAlloc
	entryInit
	entryOnTimer
	entryOnWake
	entryOnC2D
	entryOnMethod
	entryOnDesired
	numEntries
)

// entrySpec describes one export of ABI v1; the optional ones may be needed
// by an import (importSpec.needs) or by another export (catmsim_alloc).
type entrySpec struct {
	name     string
	sig      signature
	required bool
}

var entries = [numEntries]entrySpec{
	entryABIVersion: {ExportABIVersion, signature{nil, []param{i32("version")}}, true},
	entryAlloc:      {ExportAlloc, signature{[]param{i32("size")}, []param{i32("ptr")}}, false},
	entryInit:       {ExportInit, signature{}, true},
	entryOnTimer:    {ExportOnTimer, signature{}, false},
	entryOnWake:     {ExportOnWake, signature{}, false},
	entryOnC2D: {ExportOnC2D, signature{
		[]param{i32("body_ptr"), i32("body_len"), i32("props_ptr"), i32("props_len")},
		[]param{i32("outcome")}}, false},
	entryOnMethod: {ExportOnMethod, signature{
		[]param{i32("name_ptr"), i32("name_len"), i32("payload_ptr"), i32("payload_len")},
		[]param{i32("status")}}, false},
	entryOnDesired: {ExportOnDesired, signature{
		[]param{i32("patch_ptr"), i32("patch_len"), i64("version")}, nil}, false},
}

func (e entry) String() string { return entries[e].name }

// importSpec describes one host function of ABI v1.
type importSpec struct {
	name string
	sig  signature
	fn   api.GoModuleFunc
	// needs is the export a module importing this function must also have,
	// because the host calls it as a consequence.
	needs entry
}

// imports lists the host functions. A module imports only those it uses.
var imports = []importSpec{
	{"send_telemetry", signature{
		[]param{i32("body_ptr"), i32("body_len"), i32("props_ptr"), i32("props_len")},
		[]param{i32("code")}}, hostSendTelemetry, -1},
	{"report_properties", signature{
		[]param{i32("patch_ptr"), i32("patch_len")}, []param{i32("code")}}, hostReportProperties, -1},
	{"method_response", signature{
		[]param{i32("body_ptr"), i32("body_len")}, []param{i32("code")}}, hostMethodResponse, entryOnMethod},
	{"set_timer", signature{[]param{i64("delay_ms")}, []param{i32("code")}}, hostSetTimer, entryOnTimer},
	{"sleep", signature{[]param{i64("duration_ms")}, []param{i32("code")}}, hostSleep, entryOnWake},
	{"clock_ms", signature{nil, []param{i64("unix_ms")}}, hostClock, -1},
	{"log", signature{[]param{i32("level"), i32("msg_ptr"), i32("msg_len")}, nil}, hostLog, -1},
	{"sensor", signature{[]param{i32("id")}, []param{f64("value")}}, hostSensor, -1},
}
