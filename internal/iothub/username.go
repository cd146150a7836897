package iothub

import (
	"fmt"
	"net/url"
	"strings"
)

// Username is an MQTT CONNECT username in one of the forms devices send:
//
//	{host}/{clientId}/?api-version=…[&DeviceClientType=…][&model-id=…]   (SDKs, docs)
//	{host}/{clientId}/api-version=…&DeviceClientType=…                    (old C SDK, blogs: no '?')
//	{host}/{clientId}/                                                    (no query at all)
//	{host}/{clientId}                                                     (hand-written)
type Username struct {
	Host       string
	ClientID   string // {deviceId} or {deviceId}/{moduleId}
	APIVersion string
	ClientType string // DeviceClientType, decoded
	ModelID    string // model-id, decoded
	AuthChain  string
	Query      url.Values // everything after the client id
}

// FormatUsername writes the username the Node and Python SDKs send.
func FormatUsername(host string, id Identity, apiVersion, clientType, modelID string) string {
	u := host + "/" + id.ClientID() + "/?api-version=" + apiVersion
	if clientType != "" {
		u += "&DeviceClientType=" + escape(clientType)
	}
	if modelID != "" {
		u += "&model-id=" + escape(modelID)
	}
	return u
}

// ParseUsername splits a CONNECT username whose client id is clientID (the CONNECT
// packet's). The host is whatever precedes "/{clientID}"; the caller compares it
// with the hub's name, case-insensitively.
func ParseUsername(username, clientID string) (Username, error) {
	if clientID == "" {
		return Username{}, fmt.Errorf("the client id is empty; IoT Hub needs the device id (or deviceId/moduleId)")
	}
	i := strings.Index(username, "/"+clientID)
	// The client id must be followed by the end, '/', or '?' so that device "d"
	// is not found inside "d2".
	for i >= 0 {
		end := i + 1 + len(clientID)
		if end == len(username) || username[end] == '/' || username[end] == '?' {
			break
		}
		next := strings.Index(username[i+1:], "/"+clientID)
		if next < 0 {
			i = -1
			break
		}
		i += 1 + next
	}
	if i <= 0 {
		return Username{}, fmt.Errorf("username %q does not have the form {hub host}/%s/?api-version=…", clip(username), clientID)
	}
	u := Username{Host: username[:i], ClientID: clientID}
	rest := strings.TrimPrefix(username[i+1+len(clientID):], "/")
	rest = strings.TrimPrefix(rest, "?")
	q, err := url.ParseQuery(strings.ReplaceAll(rest, "+", "%2B"))
	if err != nil {
		return Username{}, fmt.Errorf("username %q: the part after the client id is not a query string: %w", clip(username), err)
	}
	u.Query = q
	u.APIVersion = q.Get("api-version")
	u.ClientType = q.Get("DeviceClientType")
	u.ModelID = q.Get("model-id")
	u.AuthChain = q.Get("auth-chain")
	return u, nil
}

// ParseClientID splits an MQTT client id into device and module.
func ParseClientID(clientID string) (Identity, error) {
	dev, mod, isModule := strings.Cut(clientID, "/")
	if err := ValidateID(dev); err != nil {
		return Identity{}, fmt.Errorf("client id %q: %w", clip(clientID), err)
	}
	if isModule {
		if err := ValidateID(mod); err != nil {
			return Identity{}, fmt.Errorf("client id %q: module %w", clip(clientID), err)
		}
	}
	return Identity{DeviceID: dev, ModuleID: mod}, nil
}

// MaxIDLength is the longest device or module id IoT Hub accepts.
const MaxIDLength = 128

// ValidateID checks a device or module id against IoT Hub's rules: 1 to 128
// ASCII letters, digits and - . + % _ # * ? ! ( ) , : = @ $ '.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("id is empty")
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("id is %d characters long; the limit is %d", len(id), MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-.+%_#*?!(),:=@$'", c) >= 0 {
			continue
		}
		return fmt.Errorf("id %q has %q, which IoT Hub does not allow in ids (letters, digits and - . + %% _ # * ? ! ( ) , : = @ $ ' only)", clip(id), c)
	}
	return nil
}
