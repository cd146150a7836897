package hub

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// AuthType is how a device or module proves who it is (the registry's
// authentication.type).
type AuthType string

const (
	AuthSAS        AuthType = "sas"
	AuthSelfSigned AuthType = "selfSigned"           // X.509, by thumbprint
	AuthCA         AuthType = "certificateAuthority" // X.509, signed by a trusted CA
)

// Registration is a device's or module's entry in the identity registry.
type Registration struct {
	Identity     iothub.Identity
	Auth         AuthType
	Keys         [2][]byte // SAS primary and secondary keys
	Thumbprints  [2]string // self-signed certificate thumbprints
	Enabled      bool
	GenerationID string
	ETag         string
	Created      time.Time
	// Implicit marks a device admitted through the group key rather than
	// registered explicitly.
	Implicit bool
}

// identity is one device or module: its registration and its live state.
type identity struct {
	mu  sync.Mutex
	reg Registration

	conn             *Conn // the one live connection, if any
	everConnected    bool
	lastActivity     time.Time
	connStateUpdated time.Time
	methodWaiters    []chan struct{} // method invocations waiting for the device to subscribe

	twin twinState
	c2d  c2dQueue // devices only
}

// AddDevice registers a device. With AuthSAS and no keys given, the hub
// generates both keys, as the real registry does.
func (h *Hub) AddDevice(r Registration) (Registration, error) {
	if err := iothub.ValidateID(r.Identity.DeviceID); err != nil {
		return Registration{}, iothub.Errorf(iothub.CodeArgumentInvalid, "device %v", err)
	}
	if r.Identity.ModuleID != "" {
		if err := iothub.ValidateID(r.Identity.ModuleID); err != nil {
			return Registration{}, iothub.Errorf(iothub.CodeArgumentInvalid, "module %v", err)
		}
		if h.lookup(iothub.Identity{DeviceID: r.Identity.DeviceID}) == nil {
			return Registration{}, iothub.Errorf(iothub.CodeDeviceNotFound, "device %q does not exist, so it cannot have module %q", r.Identity.DeviceID, r.Identity.ModuleID)
		}
	}
	switch r.Auth {
	case "":
		r.Auth = AuthSAS
		fallthrough
	case AuthSAS:
		for i := range r.Keys {
			if len(r.Keys[i]) == 0 {
				r.Keys[i] = randomKey()
			}
		}
	case AuthSelfSigned:
		if r.Thumbprints[0] == "" {
			return Registration{}, iothub.Errorf(iothub.CodeArgumentInvalid, "a self-signed X.509 device needs a primary thumbprint")
		}
	case AuthCA:
	default:
		return Registration{}, iothub.Errorf(iothub.CodeArgumentInvalid, "unknown authentication type %q (sas, selfSigned or certificateAuthority)", r.Auth)
	}
	now := h.now()
	r.Created = now
	r.GenerationID = strconv.FormatInt(now.UnixNano(), 10)
	r.ETag = etag(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.idents[r.Identity]; ok {
		return Registration{}, iothub.Errorf(iothub.CodeDeviceAlreadyExists, "%s already exists", describe(r.Identity))
	}
	it := &identity{reg: r, connStateUpdated: now}
	it.twin.init(now)
	h.idents[r.Identity] = it
	return r, nil
}

// Registration returns the registry entry of a device or module.
func (h *Hub) Registration(id iothub.Identity) (Registration, bool) {
	it := h.lookup(id)
	if it == nil {
		return Registration{}, false
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.reg, true
}

// SetEnabled enables or disables a device or module; disabling closes its
// connection, as the hub does.
func (h *Hub) SetEnabled(id iothub.Identity, enabled bool) error {
	it := h.lookup(id)
	if it == nil {
		return iothub.Errorf(iothub.CodeDeviceNotFound, "%s does not exist", describe(id))
	}
	it.mu.Lock()
	it.reg.Enabled = enabled
	c := it.conn
	it.mu.Unlock()
	if !enabled && c != nil {
		c.kick(iothub.Errorf(iothub.CodeDeviceDisabled, "%s was disabled", describe(id)))
	}
	return nil
}

// UpdateRegistration changes a registered identity's status, keys or
// thumbprints. ifMatch is its ETag (quoted or not) or "*". Keys left empty keep
// their value. Disabling closes the identity's connection.
func (h *Hub) UpdateRegistration(r Registration, ifMatch string) error {
	it := h.lookup(r.Identity)
	if it == nil {
		return iothub.Errorf(iothub.CodeDeviceNotFound, "%s does not exist", describe(r.Identity))
	}
	it.mu.Lock()
	ifMatch = strings.Trim(ifMatch, `"`)
	if ifMatch != "*" && ifMatch != it.reg.ETag {
		cur := it.reg.ETag
		it.mu.Unlock()
		return iothub.Errorf(iothub.CodePreconditionFailed, "the registry entry's etag is %s, not %s", cur, ifMatch)
	}
	if r.Auth != "" {
		it.reg.Auth = r.Auth
	}
	for i := range r.Keys {
		if len(r.Keys[i]) > 0 {
			it.reg.Keys[i] = r.Keys[i]
		}
		if r.Thumbprints[i] != "" {
			it.reg.Thumbprints[i] = r.Thumbprints[i]
		}
	}
	it.reg.Enabled = r.Enabled
	n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(it.reg.ETag, "AAAAAAAAAA"), "="), 10, 64)
	it.reg.ETag = etag(n + 1)
	c := it.conn
	it.mu.Unlock()
	if !r.Enabled && c != nil {
		c.kick(iothub.Errorf(iothub.CodeDeviceDisabled, "%s was disabled", describe(r.Identity)))
	}
	return nil
}

// RemoveModule deletes one module and closes its connection.
func (h *Hub) RemoveModule(id iothub.Identity) error {
	if id.ModuleID == "" {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "no module id given")
	}
	h.mu.Lock()
	it := h.idents[id]
	delete(h.idents, id)
	h.mu.Unlock()
	if it == nil {
		return iothub.Errorf(iothub.CodeDeviceNotFound, "%s does not exist", describe(id))
	}
	it.mu.Lock()
	c := it.conn
	it.mu.Unlock()
	if c != nil {
		c.kick(iothub.Errorf(iothub.CodeDeviceNotFound, "%s was deleted", describe(id)))
	}
	return nil
}

// RemoveDevice deletes a device, its modules and their state, closing their
// connections.
func (h *Hub) RemoveDevice(deviceID string) error {
	h.mu.Lock()
	var gone []*identity
	for id, it := range h.idents {
		if id.DeviceID == deviceID {
			gone = append(gone, it)
			delete(h.idents, id)
		}
	}
	h.mu.Unlock()
	if len(gone) == 0 {
		return iothub.Errorf(iothub.CodeDeviceNotFound, "device %q does not exist", deviceID)
	}
	for _, it := range gone {
		it.mu.Lock()
		c := it.conn
		it.mu.Unlock()
		if c != nil {
			c.kick(iothub.Errorf(iothub.CodeDeviceNotFound, "device %q was deleted", deviceID))
		}
	}
	return nil
}

func describe(id iothub.Identity) string {
	if id.ModuleID != "" {
		return fmt.Sprintf("module %q of device %q", id.ModuleID, id.DeviceID)
	}
	return fmt.Sprintf("device %q", id.DeviceID)
}

func etag(n uint64) string { return "AAAAAAAAAA" + strconv.FormatUint(n, 10) + "=" }

// Credentials are what a device presents: a SAS token (MQTT password, CBS
// put-token, SASL PLAIN password, HTTP Authorization header) or a TLS client
// certificate chain.
type Credentials struct {
	Token string
	Certs []*x509.Certificate // leaf first, as TLS presents them
}

// Principal is who a connection or request acts as after authentication.
type Principal struct {
	Identity iothub.Identity // zero for a hub-level policy principal
	Policy   string          // set when a policy key signed the token
	Rights   Rights
	Method   string    // "sas" or "x509"
	Expiry   time.Time // token expiry; zero for X.509
	Scope    string    // the token's audience
}

// AuthMethodJSON is the iothub-connection-auth-method the hub stamps on
// messages from this principal.
func (p *Principal) AuthMethodJSON() string {
	scope := "device"
	switch {
	case p.Policy != "":
		scope = "hub"
	case p.Identity.ModuleID != "":
		scope = "module"
	}
	typ := "sas"
	if p.Method == "x509" {
		typ = "x509"
	} else if p.Policy == "" {
		typ = "symkey"
	}
	return `{"scope":"` + scope + `","type":"` + typ + `","issuer":"iothub","acceptingIpFilterRule":null}`
}

// AuthError is a rejected authentication: the hub answers it with the
// protocol's "not authorized" (CONNACK 5, CBS 401, HTTP 401). Err is the reason,
// for logs, including what the device most likely got wrong when that can be
// told.
type AuthError struct {
	Identity iothub.Identity
	Err      error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("authentication of %s failed: %v", describe(e.Identity), e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// Is makes an AuthError match the hub's unauthorized code.
func (e *AuthError) Is(target error) bool {
	t, ok := target.(*iothub.Error)
	return ok && t.Code == iothub.CodeUnauthorized
}

// Authenticate checks a device's or module's credentials as IoT Hub does and
// returns the principal the connection acts as. Devices admitted through the
// group key are registered here on first use.
func (h *Hub) Authenticate(id iothub.Identity, c Credentials) (*Principal, error) {
	p, err := h.authenticate(id, c)
	if err != nil {
		h.stats.AuthFailures.Add(1)
		h.emit(Event{Kind: EventAuthFailed, Identity: id, Detail: err.Error()})
		return nil, &AuthError{Identity: id, Err: err}
	}
	return p, nil
}

func (h *Hub) authenticate(id iothub.Identity, c Credentials) (*Principal, error) {
	if c.Token == "" && len(c.Certs) == 0 {
		return nil, errors.New("no credentials: neither a SAS token nor a client certificate")
	}
	if c.Token != "" {
		return h.authToken(id, c.Token)
	}
	return h.authCert(id, c.Certs)
}

func (h *Hub) authToken(id iothub.Identity, token string) (*Principal, error) {
	v := sas.Verifier{Keys: keyFinder{h}, Now: h.now}
	resource := sas.DeviceResource(h.cfg.HostName, id.DeviceID, id.ModuleID)
	t, err := v.Verify(token, resource)
	if err != nil {
		if t != nil {
			if hint := sas.ClockHint(t.Expiry, h.now()); hint != "" && errors.Is(err, sas.ErrExpired) {
				return nil, fmt.Errorf("%w (%s)", err, hint)
			}
		}
		return nil, err
	}
	p := &Principal{Identity: id, Method: "sas", Expiry: t.Expiry, Scope: t.Resource, Rights: DeviceConnect}
	if t.KeyName != "" {
		pol, _ := h.Policy(t.KeyName)
		if pol.Rights&DeviceConnect == 0 {
			return nil, fmt.Errorf("policy %q does not grant DeviceConnect", t.KeyName)
		}
		p.Policy, p.Rights = pol.Name, pol.Rights
	}
	it, err := h.admit(id)
	if err != nil {
		return nil, err
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	if !it.reg.Enabled {
		return nil, fmt.Errorf("%s is disabled", describe(id))
	}
	if p.Policy == "" && it.reg.Auth != AuthSAS {
		return nil, fmt.Errorf("%s is registered for X.509 authentication, not SAS keys", describe(id))
	}
	return p, nil
}

// admit returns a registered identity, registering a group-key device on first
// use. The token was verified against the group-derived key before this runs.
func (h *Hub) admit(id iothub.Identity) (*identity, error) {
	if it := h.lookup(id); it != nil {
		return it, nil
	}
	if id.ModuleID != "" || h.cfg.GroupKey == nil {
		return nil, iothub.Errorf(iothub.CodeDeviceNotFound, "%s is not registered", describe(id))
	}
	key := sas.DeriveKey(h.cfg.GroupKey, id.DeviceID)
	_, err := h.AddDevice(Registration{Identity: id, Auth: AuthSAS, Keys: [2][]byte{key, key}, Enabled: true, Implicit: true})
	if err != nil && !errors.Is(err, &iothub.Error{Code: iothub.CodeDeviceAlreadyExists}) {
		return nil, err
	}
	return h.lookup(id), nil
}

func (h *Hub) authCert(id iothub.Identity, certs []*x509.Certificate) (*Principal, error) {
	it := h.lookup(id)
	if it == nil {
		return nil, iothub.Errorf(iothub.CodeDeviceNotFound, "%s is not registered", describe(id))
	}
	leaf := certs[0]
	now := h.now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("the client certificate is valid from %s to %s, not now", leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	it.mu.Lock()
	reg := it.reg
	it.mu.Unlock()
	if !reg.Enabled {
		return nil, fmt.Errorf("%s is disabled", describe(id))
	}
	switch reg.Auth {
	case AuthSelfSigned:
		tp := sas.Thumbprint(leaf)
		tp256 := sas.ThumbprintSHA256(leaf)
		for _, want := range reg.Thumbprints {
			if sas.SameThumbprint(want, tp) || sas.SameThumbprint(want, tp256) {
				return &Principal{Identity: id, Method: "x509", Rights: DeviceConnect}, nil
			}
		}
		return nil, fmt.Errorf("the client certificate's thumbprint %s is not registered for %s", tp, describe(id))
	case AuthCA:
		if leaf.Subject.CommonName != id.ClientID() && leaf.Subject.CommonName != id.DeviceID {
			return nil, fmt.Errorf("the client certificate is for %q, not %q (its subject CN must be the device id)", leaf.Subject.CommonName, id.ClientID())
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		h.mu.RLock()
		roots := h.cas
		h.mu.RUnlock()
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return nil, fmt.Errorf("the client certificate is not signed by a CA the hub trusts: %w", err)
		}
		return &Principal{Identity: id, Method: "x509", Rights: DeviceConnect}, nil
	default:
		return nil, fmt.Errorf("%s authenticates with SAS keys; it presented a certificate and no token", describe(id))
	}
}

// AuthenticateService checks a hub-level token (service SDKs, REST) for the
// rights an operation needs.
func (h *Hub) AuthenticateService(token string, need Rights) (*Principal, error) {
	v := sas.Verifier{Keys: keyFinder{h}, Now: h.now}
	t, err := v.Verify(token, h.cfg.HostName)
	if err != nil {
		h.stats.AuthFailures.Add(1)
		return nil, &AuthError{Err: err}
	}
	if t.KeyName == "" {
		return nil, &AuthError{Err: errors.New("a service token must be signed with a shared access policy key (skn)")}
	}
	pol, _ := h.Policy(t.KeyName)
	if pol.Rights&need != need {
		return nil, &AuthError{Err: fmt.Errorf("policy %q grants %s; the operation needs %s", pol.Name, pol.Rights, need)}
	}
	return &Principal{Policy: pol.Name, Rights: pol.Rights, Method: "sas", Expiry: t.Expiry, Scope: t.Resource}, nil
}

// keyFinder lets package sas find the hub's keys.
type keyFinder struct{ h *Hub }

func (k keyFinder) PolicyKeys(name string) ([][]byte, bool) {
	p, ok := k.h.Policy(name)
	if !ok {
		return nil, false
	}
	return [][]byte{p.Keys[0], p.Keys[1]}, true
}

func (k keyFinder) IdentityKeys(deviceID, moduleID string) ([][]byte, bool) {
	id := iothub.Identity{DeviceID: deviceID, ModuleID: moduleID}
	if it := k.h.lookup(id); it != nil {
		it.mu.Lock()
		defer it.mu.Unlock()
		if it.reg.Auth != AuthSAS {
			return nil, true // registered, but no key can sign for it
		}
		return [][]byte{it.reg.Keys[0], it.reg.Keys[1]}, true
	}
	if moduleID == "" && k.h.cfg.GroupKey != nil {
		return [][]byte{sas.DeriveKey(k.h.cfg.GroupKey, deviceID)}, true
	}
	return nil, false
}
