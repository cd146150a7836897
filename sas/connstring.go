package sas

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Kind says which service and identity a connection string is for.
type Kind int

const (
	// KindDevice is an IoT Hub device identity (DeviceId, no ModuleId).
	KindDevice Kind = iota + 1
	// KindModule is an IoT Hub module identity (DeviceId and ModuleId).
	KindModule
	// KindService is an IoT Hub shared access policy (SharedAccessKeyName, no DeviceId).
	KindService
	// KindEventHubs is an Event Hubs namespace or entity (Endpoint=sb://…).
	KindEventHubs
)

func (k Kind) String() string {
	switch k {
	case KindDevice:
		return "device"
	case KindModule:
		return "module"
	case KindService:
		return "service"
	case KindEventHubs:
		return "event hubs"
	}
	return "unknown"
}

// ConnectionString is a parsed IoT Hub or Event Hubs connection string. Its String
// method never shows the key or a ready-made signature; Encode does.
type ConnectionString struct {
	HostName              string // IoT Hub host, used in sr and in the MQTT username
	DeviceID              string
	ModuleID              string
	GatewayHostName       string // where the socket goes (IoT Edge, or an emulator on a non-standard port)
	SharedAccessKeyName   string // policy name; set for service and Event Hubs strings
	SharedAccessKey       string // base64 text, as issued
	SharedAccessSignature string // a ready-made token, instead of a key
	X509                  bool   // the device authenticates with a TLS client certificate

	Endpoint   string // Event Hubs: sb://{namespace host}/
	EntityPath string // Event Hubs: the event hub name
}

// canonical spellings of the keys, indexed by their lower-case form.
var connKeys = map[string]string{
	"hostname":              "HostName",
	"deviceid":              "DeviceId",
	"moduleid":              "ModuleId",
	"gatewayhostname":       "GatewayHostName",
	"sharedaccesskeyname":   "SharedAccessKeyName",
	"sharedaccesskey":       "SharedAccessKey",
	"sharedaccesssignature": "SharedAccessSignature",
	"x509":                  "x509",
	"endpoint":              "Endpoint",
	"entitypath":            "EntityPath",
}

// FieldError says which part of a connection string is missing or garbled. It
// never carries key material.
type FieldError struct {
	Field   string // canonical key name, e.g. "SharedAccessKey"; empty for structural problems
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "connection string: " + e.Problem
	}
	return "connection string: " + e.Field + " " + e.Problem
}

// ErrNotConnectionString is wrapped by every parse error, so callers can tell a bad
// connection string from other failures with errors.Is.
var ErrNotConnectionString = errors.New("not a valid connection string")

func (e *FieldError) Unwrap() error { return ErrNotConnectionString }

// Parse reads a connection string of any kind: device, module, service policy or
// Event Hubs. Pairs are separated by ';' and split at the first '=' only, because
// base64 keys end in '='. Key names are matched case-insensitively.
func Parse(s string) (ConnectionString, error) {
	var c ConnectionString
	s = strings.TrimSpace(s)
	if s == "" {
		return c, &FieldError{Problem: "is empty"}
	}
	seen := map[string]bool{}
	var unknown []string
	for i, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // tolerate a trailing or doubled ';'
		}
		eq := strings.IndexByte(part, '=')
		if eq <= 0 {
			return c, &FieldError{Problem: fmt.Sprintf("part %d is not Key=Value (pairs are separated by ';')", i+1)}
		}
		rawKey, val := strings.TrimSpace(part[:eq]), strings.TrimSpace(part[eq+1:])
		key, ok := connKeys[strings.ToLower(rawKey)]
		if !ok {
			// Unknown keys are kept for the error texts below: a typo in a known
			// key is far more likely than a new key.
			unknown = append(unknown, safeName(rawKey))
			continue
		}
		if seen[key] {
			return c, &FieldError{Field: key, Problem: "appears more than once"}
		}
		seen[key] = true
		if val == "" {
			return c, &FieldError{Field: key, Problem: "is empty"}
		}
		switch key {
		case "HostName":
			c.HostName = val
		case "DeviceId":
			c.DeviceID = val
		case "ModuleId":
			c.ModuleID = val
		case "GatewayHostName":
			c.GatewayHostName = val
		case "SharedAccessKeyName":
			c.SharedAccessKeyName = val
		case "SharedAccessKey":
			c.SharedAccessKey = val
		case "SharedAccessSignature":
			c.SharedAccessSignature = val
		case "x509":
			if !strings.EqualFold(val, "true") {
				return c, &FieldError{Field: key, Problem: fmt.Sprintf("must be true when present (got %q)", safeName(val))}
			}
			c.X509 = true
		case "Endpoint":
			c.Endpoint = val
		case "EntityPath":
			c.EntityPath = val
		}
	}
	hint := ""
	if len(unknown) > 0 {
		sort.Strings(unknown)
		hint = fmt.Sprintf(" (unknown keys present: %s)", strings.Join(unknown, ", "))
	}
	if err := c.validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Problem += hint
		}
		return c, err
	}
	return c, nil
}

func (c *ConnectionString) validate() error {
	if c.Endpoint != "" {
		return c.validateEventHubs()
	}
	if c.HostName == "" {
		return &FieldError{Field: "HostName", Problem: "is missing (every IoT Hub connection string names the hub, e.g. HostName=myhub.azure-devices.net)"}
	}
	if err := checkHost("HostName", c.HostName); err != nil {
		return err
	}
	if c.GatewayHostName != "" {
		if err := checkHost("GatewayHostName", c.GatewayHostName); err != nil {
			return err
		}
	}
	if c.SharedAccessKey != "" {
		if err := checkKey(c.SharedAccessKey); err != nil {
			return err
		}
	}
	if c.DeviceID == "" {
		if c.ModuleID != "" {
			return &FieldError{Field: "DeviceId", Problem: "is missing (a ModuleId needs the DeviceId of its device)"}
		}
		if c.SharedAccessKeyName == "" {
			return &FieldError{Field: "DeviceId", Problem: "is missing (a device string needs DeviceId; a service string needs SharedAccessKeyName)"}
		}
		if c.SharedAccessKey == "" {
			return &FieldError{Field: "SharedAccessKey", Problem: "is missing (a service connection string needs the policy's key)"}
		}
		if c.X509 || c.SharedAccessSignature != "" {
			return &FieldError{Field: "SharedAccessKeyName", Problem: "goes with SharedAccessKey only in a service connection string"}
		}
		return nil
	}
	n := 0
	for _, set := range []bool{c.SharedAccessKey != "", c.SharedAccessSignature != "", c.X509} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return &FieldError{Field: "SharedAccessKey", Problem: "is missing (a device string needs one of SharedAccessKey, SharedAccessSignature or x509=true)"}
	case n > 1:
		return &FieldError{Field: "SharedAccessKey", Problem: "conflicts: give only one of SharedAccessKey, SharedAccessSignature or x509=true"}
	}
	if c.SharedAccessSignature != "" {
		if _, err := ParseToken(c.SharedAccessSignature); err != nil {
			return &FieldError{Field: "SharedAccessSignature", Problem: "is not a SAS token: " + err.Error()}
		}
	}
	return nil
}

func (c *ConnectionString) validateEventHubs() error {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Scheme != "sb" || u.Host == "" {
		return &FieldError{Field: "Endpoint", Problem: fmt.Sprintf("must look like sb://mynamespace.servicebus.windows.net/ (got %q)", safeName(c.Endpoint))}
	}
	if c.SharedAccessKeyName == "" {
		return &FieldError{Field: "SharedAccessKeyName", Problem: "is missing (Event Hubs tokens always name their policy)"}
	}
	if c.SharedAccessKey == "" {
		return &FieldError{Field: "SharedAccessKey", Problem: "is missing"}
	}
	if err := checkKey(c.SharedAccessKey); err != nil {
		return err
	}
	if c.DeviceID != "" || c.ModuleID != "" || c.X509 {
		return &FieldError{Field: "Endpoint", Problem: "marks an Event Hubs string, which takes no DeviceId, ModuleId or x509"}
	}
	return nil
}

func checkHost(field, h string) error {
	if i := strings.Index(h, "://"); i >= 0 {
		return &FieldError{Field: field, Problem: fmt.Sprintf("must be a host name without a scheme (drop %q)", h[:i+3])}
	}
	if strings.ContainsAny(h, "/ \t?#@") {
		return &FieldError{Field: field, Problem: fmt.Sprintf("must be a bare host name such as myhub.azure-devices.net (got %q)", h)}
	}
	return nil
}

func checkKey(k string) error {
	if _, err := DecodeKey(k); err != nil {
		return &FieldError{Field: "SharedAccessKey", Problem: "is not valid base64 (copy the key exactly as the portal or the hub shows it)"}
	}
	return nil
}

// safeName shortens an unknown key or value for an error text, so that a key
// pasted into the wrong place is never echoed whole.
func safeName(s string) string {
	if len(s) > 24 {
		return s[:12] + "…"
	}
	return s
}

// Kind says what the string identifies.
func (c ConnectionString) Kind() Kind {
	switch {
	case c.Endpoint != "":
		return KindEventHubs
	case c.DeviceID != "" && c.ModuleID != "":
		return KindModule
	case c.DeviceID != "":
		return KindDevice
	default:
		return KindService
	}
}

// Namespace is the Event Hubs namespace host named by Endpoint.
func (c ConnectionString) Namespace() string {
	if u, err := url.Parse(c.Endpoint); err == nil {
		return u.Host
	}
	return ""
}

// Resource is the resource URI (unencoded) a token for this string is scoped to:
// {host}/devices/{id}[/modules/{mid}] for a device or module, {host} for a service
// policy, and https://{namespace}/{entity} for Event Hubs.
func (c ConnectionString) Resource() string {
	switch c.Kind() {
	case KindDevice:
		return DeviceResource(c.HostName, c.DeviceID, "")
	case KindModule:
		return DeviceResource(c.HostName, c.DeviceID, c.ModuleID)
	case KindEventHubs:
		r := "https://" + c.Namespace()
		if c.EntityPath != "" {
			r += "/" + c.EntityPath
		}
		return r
	default:
		return c.HostName
	}
}

// DeviceResource is the resource URI of a device ({host}/devices/{id}) or, when
// moduleID is set, of one of its modules.
func DeviceResource(host, deviceID, moduleID string) string {
	r := host + "/devices/" + deviceID
	if moduleID != "" {
		r += "/modules/" + moduleID
	}
	return r
}

// SocketHost is where the connection goes: GatewayHostName when set, else HostName.
func (c ConnectionString) SocketHost() string {
	if c.GatewayHostName != "" {
		return c.GatewayHostName
	}
	return c.HostName
}

// Key returns the decoded shared access key.
func (c ConnectionString) Key() ([]byte, error) {
	if c.SharedAccessKey == "" {
		return nil, &FieldError{Field: "SharedAccessKey", Problem: "is missing"}
	}
	return DecodeKey(c.SharedAccessKey)
}

// String shows the connection string with the key and any signature redacted.
func (c ConnectionString) String() string { return c.format(true) }

// GoString keeps %#v from printing the key.
func (c ConnectionString) GoString() string { return "sas.ConnectionString{" + c.format(true) + "}" }

// Encode gives the full connection string, key included, in the canonical key
// order the portal uses.
func (c ConnectionString) Encode() string { return c.format(false) }

func (c ConnectionString) format(redact bool) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	secret := func(v string) string {
		if redact && v != "" {
			return "<redacted>"
		}
		return v
	}
	add("Endpoint", c.Endpoint)
	add("HostName", c.HostName)
	add("DeviceId", c.DeviceID)
	add("ModuleId", c.ModuleID)
	add("SharedAccessKeyName", c.SharedAccessKeyName)
	add("SharedAccessKey", secret(c.SharedAccessKey))
	add("SharedAccessSignature", secret(c.SharedAccessSignature))
	if c.X509 {
		add("x509", "true")
	}
	add("EntityPath", c.EntityPath)
	add("GatewayHostName", c.GatewayHostName)
	return strings.Join(parts, ";")
}

// DecodeKey decodes a base64 shared access key. Keys are issued in standard
// base64 with padding; a key missing its padding, or in the URL-safe alphabet,
// is accepted as well because both are common copy-and-paste accidents that
// still identify the same bytes.
func DecodeKey(k string) ([]byte, error) {
	k = strings.TrimSpace(k)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(k); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	return nil, errors.New("the key is not valid base64: use the key text exactly as issued (for example 44 characters ending in '=')")
}

// EncodeKey is the standard base64 text of a key, as the hub issues it.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
