package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

const tokenPrefix = "SharedAccessSignature "

// Encode escapes s the way the official SDKs escape the sr and sig fields: every
// byte outside A-Z a-z 0-9 - _ . ~ becomes %XX with upper-case hex. This matches
// Node's encodeUriComponentStrict, Python's urllib.parse.quote(s, safe="") and
// .NET's WebUtility.UrlEncode for the characters that occur in host names, ids
// and base64.
func Encode(s string) string { return iothub.Escape(s) }

// percentDecode undoes %XX escapes and nothing else: a '+' stays a '+', because
// the hub does not read sr or sig as form data and a client that forgot to
// encode sig sends a literal '+'.
func percentDecode(s string) (string, bool) { return iothub.Unescape(s) }

// Signature is base64(HMAC-SHA256(key, rawResource + "\n" + rawExpiry)): the
// string-to-sign uses the sr and se texts exactly as they appear in the token.
func Signature(rawResource, rawExpiry string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(rawResource))
	m.Write([]byte{'\n'})
	m.Write([]byte(rawExpiry))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign makes a token for resource (unencoded, e.g. "myhub.azure-devices.net/devices/dev1")
// that expires at expiry. keyName is the policy name (skn) and must be empty when
// key is a device's or module's own key. The field order is that of the Python
// SDK: sr, sig, se, then skn.
func Sign(resource string, key []byte, keyName string, expiry time.Time) string {
	sr := Encode(resource)
	se := strconv.FormatInt(expiry.Unix(), 10)
	t := tokenPrefix + "sr=" + sr + "&sig=" + Encode(Signature(sr, se, key)) + "&se=" + se
	if keyName != "" {
		t += "&skn=" + Encode(keyName)
	}
	return t
}

// TokenSource signs tokens for one resource with an injected clock. Clients keep
// one per connection and ask for a fresh token before the current one expires.
type TokenSource struct {
	Resource string // unencoded resource URI
	Key      []byte // decoded key
	KeyName  string // policy name, empty for identity keys
	TTL      time.Duration
	Now      func() time.Time // defaults to time.Now
}

// DefaultTTL is the token lifetime when a TokenSource sets none: one hour, the C
// SDK's default.
const DefaultTTL = time.Hour

// Token signs a token valid from now for the source's TTL and returns it with its
// expiry, truncated to the second as it is written in se.
func (s *TokenSource) Token() (string, time.Time) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	exp := time.Unix(now().Add(ttl).Unix(), 0).UTC()
	return Sign(s.Resource, s.Key, s.KeyName, exp), exp
}

// TokenFor signs a token for a connection string that carries a key: its device,
// module, service policy or Event Hubs resource, expiring at expiry. A device or
// module string signs with its own key and no skn unless it names a policy.
func TokenFor(c ConnectionString, expiry time.Time) (string, error) {
	key, err := c.Key()
	if err != nil {
		return "", err
	}
	return Sign(c.Resource(), key, c.SharedAccessKeyName, expiry), nil
}

// Token is a parsed SAS token. The Raw fields are the texts exactly as received,
// which is what the signature covers.
type Token struct {
	RawResource  string    // sr as received, still URL-encoded
	Resource     string    // sr percent-decoded: the audience
	RawSignature string    // sig as received
	Signature    string    // sig percent-decoded: base64 text of the MAC
	RawExpiry    string    // se as received
	Expiry       time.Time // se as a time (UTC)
	KeyName      string    // skn, percent-decoded; empty for identity keys
}

// ParseToken splits a token into its fields. Field order is free; sr, sig and se
// are required and skn is optional. Anything else is a *MalformedError.
func ParseToken(s string) (*Token, error) {
	s = strings.TrimSpace(s)
	if s == strings.TrimSpace(tokenPrefix) {
		return nil, &MalformedError{Reason: "it has no fields after the prefix"}
	}
	if !strings.HasPrefix(s, tokenPrefix) {
		if strings.HasPrefix(s, "sr=") || strings.Contains(s, "&sig=") {
			return nil, &MalformedError{Reason: `it lacks the "SharedAccessSignature " prefix before sr=…`}
		}
		return nil, &MalformedError{Reason: `it does not start with "SharedAccessSignature "`}
	}
	body := strings.TrimSpace(s[len(tokenPrefix):])
	if body == "" {
		return nil, &MalformedError{Reason: "it has no fields after the prefix"}
	}
	t := &Token{}
	seen := map[string]bool{}
	for _, f := range strings.Split(body, "&") {
		eq := strings.IndexByte(f, '=')
		if eq < 0 {
			return nil, &MalformedError{Reason: "a field is not name=value: " + quoteShort(f)}
		}
		name, val := f[:eq], f[eq+1:]
		switch name {
		case "sr", "sig", "se", "skn":
		default:
			return nil, &MalformedError{Reason: "unknown field " + quoteShort(name) + " (a token has sr, sig, se and optionally skn)"}
		}
		if seen[name] {
			return nil, &MalformedError{Reason: "field " + name + " appears twice"}
		}
		seen[name] = true
		if val == "" {
			return nil, &MalformedError{Reason: "field " + name + " is empty"}
		}
		switch name {
		case "sr":
			dec, ok := percentDecode(val)
			if !ok {
				return nil, &MalformedError{Reason: "sr has a broken %-escape"}
			}
			t.RawResource, t.Resource = val, dec
		case "sig":
			dec, ok := percentDecode(val)
			if !ok {
				return nil, &MalformedError{Reason: "sig has a broken %-escape"}
			}
			t.RawSignature, t.Signature = val, dec
		case "se":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 || n > maxExpiry {
				return nil, &MalformedError{Reason: "se must be whole seconds since 1970-01-01 UTC (got " + quoteShort(val) + ")"}
			}
			t.RawExpiry, t.Expiry = val, time.Unix(n, 0).UTC()
		case "skn":
			dec, ok := percentDecode(val)
			if !ok {
				return nil, &MalformedError{Reason: "skn has a broken %-escape"}
			}
			t.KeyName = dec
		}
	}
	for _, req := range []string{"sr", "sig", "se"} {
		if !seen[req] {
			return nil, &MalformedError{Reason: "field " + req + " is missing"}
		}
	}
	return t, nil
}

// maxExpiry keeps se inside the range time.Time handles without surprises (the
// year 9999).
const maxExpiry = 253402300799

func quoteShort(s string) string { return strconv.Quote(safeName(s)) }
