package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinels for errors.Is; each error type below matches exactly one of them.
var (
	ErrMalformed       = errors.New("malformed SAS token")
	ErrBadSignature    = errors.New("SAS signature does not match")
	ErrExpired         = errors.New("SAS token expired")
	ErrWrongResource   = errors.New("SAS token is for another resource")
	ErrUnknownPolicy   = errors.New("unknown shared access policy")
	ErrUnknownIdentity = errors.New("unknown device or module")
)

// MalformedError is a token that cannot be parsed, or whose sr names nothing a
// key could belong to.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "malformed SAS token: " + e.Reason }

// Is reports whether target is ErrMalformed.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// SignatureError is a token whose sig is not the MAC of its sr and se under any
// of the keys tried. Hint names the likely mistake when a common signing bug
// would have produced the received signature.
type SignatureError struct{ Hint string }

func (e *SignatureError) Error() string {
	if e.Hint != "" {
		return "SAS signature does not match the key: " + e.Hint
	}
	return "SAS signature does not match the key: check that the token was signed with this key"
}

// Is reports whether target is ErrBadSignature.
func (e *SignatureError) Is(target error) bool { return target == ErrBadSignature }

// ExpiredError is a token whose se lies before the verifier's now.
type ExpiredError struct {
	Expiry, Now time.Time
}

func (e *ExpiredError) Error() string {
	msg := fmt.Sprintf("SAS token expired %s ago (se=%d, %s; now %s)",
		HumanDuration(e.Now.Sub(e.Expiry)), e.Expiry.Unix(), e.Expiry.Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
	if h := ClockHint(e.Expiry, e.Now); h != "" {
		msg += ": " + h
	}
	return msg
}

// Is reports whether target is ErrExpired.
func (e *ExpiredError) Is(target error) bool { return target == ErrExpired }

// ResourceError is a valid token whose audience does not cover the resource
// being accessed.
type ResourceError struct {
	Audience, Resource string
}

func (e *ResourceError) Error() string {
	return fmt.Sprintf("SAS token is scoped to %q, which does not cover %q", e.Audience, e.Resource)
}

// Is reports whether target is ErrWrongResource.
func (e *ResourceError) Is(target error) bool { return target == ErrWrongResource }

// UnknownPolicyError is a token whose skn names no policy the verifier knows.
type UnknownPolicyError struct{ Name string }

func (e *UnknownPolicyError) Error() string {
	return fmt.Sprintf("SAS token names shared access policy %q (skn), which does not exist", e.Name)
}

// Is reports whether target is ErrUnknownPolicy.
func (e *UnknownPolicyError) Is(target error) bool { return target == ErrUnknownPolicy }

// UnknownIdentityError is a token signed with an identity key (no skn) for a
// device or module the verifier does not know.
type UnknownIdentityError struct{ DeviceID, ModuleID string }

func (e *UnknownIdentityError) Error() string {
	if e.ModuleID != "" {
		return fmt.Sprintf("SAS token is for module %q of device %q, which is not registered", e.ModuleID, e.DeviceID)
	}
	return fmt.Sprintf("SAS token is for device %q, which is not registered", e.DeviceID)
}

// Is reports whether target is ErrUnknownIdentity.
func (e *UnknownIdentityError) Is(target error) bool { return target == ErrUnknownIdentity }

// Keys finds the keys a token may be signed with. A lookup returns the primary
// key first and then the secondary, and ok=false when the policy or identity
// does not exist.
type Keys interface {
	PolicyKeys(name string) (keys [][]byte, ok bool)
	IdentityKeys(deviceID, moduleID string) (keys [][]byte, ok bool)
}

// StaticKey is a Keys that answers every lookup with one key: for checking a token
// against a key a user holds, when there is no registry to consult.
type StaticKey []byte

// PolicyKeys returns the key whatever the policy name.
func (k StaticKey) PolicyKeys(string) ([][]byte, bool) { return [][]byte{k}, true }

// IdentityKeys returns the key whatever the identity.
func (k StaticKey) IdentityKeys(string, string) ([][]byte, bool) { return [][]byte{k}, true }

// Verifier checks tokens the way IoT Hub does (spec §1.2): MAC over the raw sr
// and se, key chosen by skn or by the audience's identity, expiry against Now,
// and the audience as a segment prefix of the resource.
type Verifier struct {
	Keys Keys
	Now  func() time.Time // defaults to time.Now
}

// Verify parses token and checks it for access to resource (unencoded, e.g.
// "myhub.azure-devices.net/devices/dev1"). An empty resource skips the scope
// check. The parsed token is returned with every error after parsing, so callers
// can log what the token claimed.
func (v *Verifier) Verify(token, resource string) (*Token, error) {
	t, err := ParseToken(token)
	if err != nil {
		return nil, err
	}
	return t, v.Check(t, resource)
}

// Check verifies an already parsed token; see Verify.
func (v *Verifier) Check(t *Token, resource string) error {
	var keys [][]byte
	if t.KeyName != "" {
		k, ok := v.Keys.PolicyKeys(t.KeyName)
		if !ok {
			return &UnknownPolicyError{Name: t.KeyName}
		}
		keys = k
	} else {
		a, err := ParseAudience(t.Resource)
		if err != nil {
			return err
		}
		if a.DeviceID == "" {
			return &MalformedError{Reason: fmt.Sprintf("sr %q names no device, so the token needs skn to say which policy key signed it", t.Resource)}
		}
		k, ok := v.Keys.IdentityKeys(a.DeviceID, a.ModuleID)
		if !ok {
			return &UnknownIdentityError{DeviceID: a.DeviceID, ModuleID: a.ModuleID}
		}
		keys = k
	}
	if err := CheckSignature(t, keys...); err != nil {
		return err
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if err := CheckExpiry(t, now); err != nil {
		return err
	}
	if resource != "" && !Covers(t.Resource, resource) {
		return &ResourceError{Audience: t.Resource, Resource: resource}
	}
	return nil
}

// CheckSignature verifies the MAC against each key in turn (primary, then
// secondary) in constant time. On failure it tries the signing mistakes seen in
// public device code, to name the likely one in the error; such tokens are still
// rejected.
func CheckSignature(t *Token, keys ...[]byte) error {
	got, err := base64.StdEncoding.DecodeString(t.Signature)
	if err != nil {
		return &SignatureError{Hint: "sig is not base64 (was it URL-encoded twice, or cut short?)"}
	}
	for _, k := range keys {
		if hmac.Equal(got, mac(k, t.RawResource, t.RawExpiry)) {
			return nil
		}
	}
	return &SignatureError{Hint: signatureHint(t, got, keys)}
}

func mac(key []byte, sr, se string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sr))
	m.Write([]byte{'\n'})
	m.Write([]byte(se))
	return m.Sum(nil)
}

func signatureHint(t *Token, got []byte, keys [][]byte) string {
	for _, k := range keys {
		text := []byte(EncodeKey(k))
		switch {
		case hmac.Equal(got, mac(text, t.RawResource, t.RawExpiry)):
			return "it was signed with the key's base64 text instead of its decoded bytes; base64-decode the key before computing the HMAC"
		case t.RawResource != t.Resource && hmac.Equal(got, mac(k, t.Resource, t.RawExpiry)):
			return "it was signed over the decoded resource while sr carries the URL-encoded one; sign the sr text exactly as it appears in the token"
		case hmac.Equal(got, mac(k, Encode(t.Resource), t.RawExpiry)) && Encode(t.Resource) != t.RawResource:
			return "it was signed over the URL-encoded resource while sr carries another form; sign the sr text exactly as it appears in the token"
		case hmac.Equal(got, mac(k, strings.ToLower(t.RawResource), t.RawExpiry)) && strings.ToLower(t.RawResource) != t.RawResource:
			return "it was signed over the lower-cased resource while sr keeps its case; sign the sr text exactly as it appears in the token"
		}
	}
	return "the key is not the one that signed this token, or sr or se were changed after signing"
}

// CheckExpiry rejects a token whose se lies before now, as the hub does.
func CheckExpiry(t *Token, now time.Time) error {
	if now.Unix() > t.Expiry.Unix() {
		return &ExpiredError{Expiry: t.Expiry, Now: now.UTC()}
	}
	return nil
}

// Epoch2000Offset is the number of seconds between the Unix epoch and
// 2000-01-01T00:00:00Z, where many MicroPython ports start time.time().
const Epoch2000Offset = 946684800

// ClockHint explains an expiry that is off by a tell-tale amount: a device clock
// counting from 2000 (MicroPython) or never set, or the 2000 offset added on a
// firmware that already counts from 1970. It returns "" when nothing stands out.
func ClockHint(expiry, now time.Time) string {
	se, n := expiry.Unix(), now.Unix()
	const day, year = 86400, 366 * 86400
	switch {
	case se+Epoch2000Offset > n-2*day && se+Epoch2000Offset < n+year:
		return fmt.Sprintf("se is about %d s (30 years) behind: the device clock counts from 2000-01-01 (MicroPython's epoch); add %d to time.time() before computing se", Epoch2000Offset, Epoch2000Offset)
	case se < Epoch2000Offset+10*year:
		return "se lies around 1970 or 2000: the device clock was probably never set (no NTP); set the RTC before signing"
	case se-Epoch2000Offset > n-2*day && se-Epoch2000Offset < n+year:
		return fmt.Sprintf("se is about %d s (30 years) ahead: %d was added on a firmware whose clock already counts from 1970", Epoch2000Offset, Epoch2000Offset)
	}
	return ""
}

// Audience is a resource URI split into the parts that matter for scoping.
type Audience struct {
	Host     string
	DeviceID string
	ModuleID string
	Rest     []string // segments after the identity
}

// ParseAudience splits a decoded resource URI, with or without a scheme
// (https://, sb://, amqps://), into host, device and module.
func ParseAudience(resource string) (Audience, error) {
	segs := segments(resource)
	if len(segs) == 0 || segs[0] == "" {
		return Audience{}, &MalformedError{Reason: "sr is empty"}
	}
	a := Audience{Host: segs[0]}
	rest := segs[1:]
	if len(rest) >= 2 && strings.EqualFold(rest[0], "devices") {
		a.DeviceID = rest[1]
		rest = rest[2:]
		if len(rest) >= 2 && strings.EqualFold(rest[0], "modules") {
			a.ModuleID = rest[1]
			rest = rest[2:]
		}
	}
	a.Rest = rest
	return a, nil
}

func segments(resource string) []string {
	if i := strings.Index(resource, "://"); i >= 0 {
		resource = resource[i+3:]
	}
	resource = strings.TrimRight(resource, "/")
	if resource == "" {
		return nil
	}
	return strings.Split(resource, "/")
}

// Covers reports whether a token scoped to audience grants access to resource:
// audience must be a segment prefix of resource ("/a/b" covers "/a/b/c" but not
// "/a/bc"). The host and the fixed words of the path ("devices", "modules",
// "messages", …) compare case-insensitively; ids compare exactly, because device
// and module ids are case-sensitive.
func Covers(audience, resource string) bool {
	a, r := segments(audience), segments(resource)
	if len(a) == 0 || len(a) > len(r) {
		return false
	}
	ids := idPositions(r)
	for i := range a {
		if ids[i] {
			if a[i] != r[i] {
				return false
			}
		} else if !strings.EqualFold(a[i], r[i]) {
			return false
		}
	}
	return true
}

// idPositions marks the segments of a resource path that are ids: each one that
// follows the word "devices" or "modules" in a word position. Walking from the
// host keeps a device literally named "modules" from being read as the word.
func idPositions(segs []string) []bool {
	ids := make([]bool, len(segs))
	nextIsID := false
	for i := 1; i < len(segs); i++ {
		if nextIsID {
			ids[i] = true
			nextIsID = false
			continue
		}
		w := strings.ToLower(segs[i])
		nextIsID = w == "devices" || w == "modules"
	}
	return ids
}

// HumanDuration prints a duration the way a person reads an expiry: "3h2m",
// "45s", "30 years".
func HumanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	const year = 365*24*time.Hour + 6*time.Hour
	switch {
	case d >= 2*year:
		return fmt.Sprintf("%.0f years", d.Hours()/year.Hours())
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.0f days", d.Hours()/24)
	case d >= time.Minute:
		return d.Truncate(time.Minute).String()
	default:
		return d.Truncate(time.Second).String()
	}
}
