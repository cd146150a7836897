package hub

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// Config is how a Hub behaves. The zero value is usable: host name "localhost",
// the default policies with random keys, no group key, the real clock.
type Config struct {
	// HostName is the hub's name: it appears in SAS token resources, MQTT
	// usernames and connection strings, and is compared case-insensitively.
	HostName string
	// GroupKey, when set, admits any device whose key is DeriveKey(GroupKey, id),
	// as a DPS symmetric-key group enrollment does; such devices are registered on
	// their first connection. It also derives the policies' keys, so that every
	// credential of a hub started with the same group key is the same.
	GroupKey []byte
	// Now is the hub's clock; time.Now when nil.
	Now func() time.Time
	// C2DTTL is the default time-to-live of cloud-to-device messages
	// (iothub.DefaultC2DTTL when zero).
	C2DTTL time.Duration
	// MaxDeliveryCount is how often a C2D message is delivered before it is
	// dead-lettered (iothub.DefaultMaxDeliveryCount when zero).
	MaxDeliveryCount int
	// StoreLimit bounds how many accepted device-to-cloud messages the store
	// keeps in full; counts stay exact beyond it. Zero keeps 1,000,000.
	StoreLimit int
	// KeepBodies keeps message bodies in the store; without it only their sizes
	// and properties are kept, which a fleet of thousands of devices needs.
	KeepBodies bool
	// PerDeviceStats keeps message counts per device and protocol in Stats (and
	// the metrics), which a standalone hub wants and a fleet of thousands does not.
	PerDeviceStats bool
	// EventHubsNamespace is the host of the emulator's Event Hubs-compatible REST
	// endpoint, which signs with its own policies ("RootManageSharedAccessKey"
	// and "send"); catmsim.servicebus.windows.net by default.
	EventHubsNamespace string
	// Throttler, when set, decides whether an operation may proceed now.
	Throttler Throttler
	// Logger receives connection and message logs; nothing is logged when nil.
	Logger *slog.Logger
}

// Rights are what a shared access policy allows.
type Rights uint8

const (
	RegistryRead Rights = 1 << iota
	RegistryWrite
	ServiceConnect
	DeviceConnect
)

func (r Rights) String() string {
	var parts []string
	for _, x := range []struct {
		r Rights
		n string
	}{{RegistryRead, "RegistryRead"}, {RegistryWrite, "RegistryWrite"}, {ServiceConnect, "ServiceConnect"}, {DeviceConnect, "DeviceConnect"}} {
		if r&x.r != 0 {
			parts = append(parts, x.n)
		}
	}
	return strings.Join(parts, "|")
}

// Policy is a hub-level shared access policy.
type Policy struct {
	Name   string
	Rights Rights
	Keys   [2][]byte // primary, secondary
}

// defaultPolicies are the policies every IoT Hub starts with (D-SAS).
var defaultPolicies = []struct {
	name   string
	rights Rights
}{
	{"iothubowner", RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect},
	{"service", ServiceConnect},
	{"device", DeviceConnect},
	{"registryRead", RegistryRead},
	{"registryReadWrite", RegistryRead | RegistryWrite},
}

// Hub is the emulator's state and its Go API for the cloud side. Front ends
// (MQTT, AMQP, HTTPS) authenticate devices through it, open a Conn per live
// device connection, and hand it what devices send.
type Hub struct {
	cfg   Config
	now   func() time.Time
	log   *slog.Logger
	store *Store

	mu       sync.RWMutex
	idents   map[iothub.Identity]*identity
	policies map[string]*Policy
	ehKeys   map[string][2][]byte // Event Hubs namespace policies
	cas      *x509.CertPool
	nCAs     int

	methodSeq atomic.Uint64
	pending   sync.Map // rid → *pendingMethod
	c2dSeq    atomic.Uint64
	feedback  feedbackQueue

	events events
	stats  Stats
}

// New makes a hub from cfg.
func New(cfg Config) (*Hub, error) {
	if cfg.HostName == "" {
		cfg.HostName = "localhost"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.C2DTTL <= 0 {
		cfg.C2DTTL = iothub.DefaultC2DTTL
	}
	if cfg.C2DTTL > iothub.MaxC2DTTL {
		return nil, fmt.Errorf("C2D TTL %s is longer than IoT Hub's maximum of %s", cfg.C2DTTL, iothub.MaxC2DTTL)
	}
	if cfg.MaxDeliveryCount <= 0 {
		cfg.MaxDeliveryCount = iothub.DefaultMaxDeliveryCount
	}
	if cfg.MaxDeliveryCount > 100 {
		return nil, fmt.Errorf("max delivery count %d is above IoT Hub's maximum of 100", cfg.MaxDeliveryCount)
	}
	if cfg.EventHubsNamespace == "" {
		cfg.EventHubsNamespace = "catmsim.servicebus.windows.net"
	}
	if cfg.StoreLimit <= 0 {
		cfg.StoreLimit = 1_000_000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		cfg:      cfg,
		now:      cfg.Now,
		log:      log,
		store:    newStore(cfg.StoreLimit, cfg.KeepBodies),
		idents:   map[iothub.Identity]*identity{},
		policies: map[string]*Policy{},
		ehKeys:   map[string][2][]byte{},
		cas:      x509.NewCertPool(),
	}
	for _, p := range defaultPolicies {
		pol := &Policy{Name: p.name, Rights: p.rights}
		for i := range pol.Keys {
			if cfg.GroupKey != nil {
				pol.Keys[i] = derive(cfg.GroupKey, fmt.Sprintf("policy:%s:%d", p.name, i))
			} else {
				pol.Keys[i] = randomKey()
			}
		}
		h.policies[p.name] = pol
	}
	for _, name := range []string{"RootManageSharedAccessKey", "send"} {
		var keys [2][]byte
		for i := range keys {
			if cfg.GroupKey != nil {
				keys[i] = derive(cfg.GroupKey, fmt.Sprintf("eventhubs:%s:%d", name, i))
			} else {
				keys[i] = randomKey()
			}
		}
		h.ehKeys[name] = keys
	}
	return h, nil
}

// EventHubsConnectionString is the connection string of one of the emulator's
// Event Hubs policies for an event hub (entity).
func (h *Hub) EventHubsConnectionString(policy, entity string) (string, error) {
	keys, ok := h.ehKeys[policy]
	if !ok {
		return "", fmt.Errorf("no Event Hubs policy %q (RootManageSharedAccessKey or send)", policy)
	}
	return sas.ConnectionString{Endpoint: "sb://" + h.cfg.EventHubsNamespace + "/", SharedAccessKeyName: policy, SharedAccessKey: sas.EncodeKey(keys[0]), EntityPath: entity}.Encode(), nil
}

// AuthenticateEventHubs checks an Event Hubs SAS token for sending to entity:
// signed with one of the namespace's policies (skn) and scoped to the
// namespace or to the entity, with or without a scheme.
func (h *Hub) AuthenticateEventHubs(token, entity string) (*Principal, error) {
	v := sas.Verifier{Keys: ehKeyFinder{h}, Now: h.now}
	t, err := v.Verify(token, h.cfg.EventHubsNamespace+"/"+entity)
	if err != nil {
		h.stats.AuthFailures.Add(1)
		return nil, &AuthError{Err: err}
	}
	if t.KeyName == "" {
		return nil, &AuthError{Err: errors.New("an Event Hubs token must name its policy (skn)")}
	}
	return &Principal{Policy: t.KeyName, Method: "sas", Expiry: t.Expiry, Scope: t.Resource}, nil
}

// ehKeyFinder lets package sas find the Event Hubs policies' keys.
type ehKeyFinder struct{ h *Hub }

func (k ehKeyFinder) PolicyKeys(name string) ([][]byte, bool) {
	keys, ok := k.h.ehKeys[name]
	return [][]byte{keys[0], keys[1]}, ok
}

func (k ehKeyFinder) IdentityKeys(string, string) ([][]byte, bool) { return nil, false }

// HostName is the hub's name.
func (h *Hub) HostName() string { return h.cfg.HostName }

// Store is the record of every accepted device-to-cloud message.
func (h *Hub) Store() *Store { return h.store }

// Now is the hub's clock.
func (h *Hub) Now() time.Time { return h.now() }

// Policy returns a shared access policy by name.
func (h *Hub) Policy(name string) (Policy, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	p, ok := h.policies[name]
	if !ok {
		return Policy{}, false
	}
	return *p, true
}

// ServiceConnectionString is the connection string of a policy, as the portal
// shows it.
func (h *Hub) ServiceConnectionString(policy string) (string, error) {
	p, ok := h.Policy(policy)
	if !ok {
		return "", fmt.Errorf("no shared access policy %q", policy)
	}
	return sas.ConnectionString{HostName: h.cfg.HostName, SharedAccessKeyName: p.Name, SharedAccessKey: sas.EncodeKey(p.Keys[0])}.Encode(), nil
}

// DeviceKey is the key a device id has under the group key: what a device
// admitted through the group enrollment must sign with.
func (h *Hub) DeviceKey(deviceID string) ([]byte, error) {
	if h.cfg.GroupKey == nil {
		return nil, errors.New("the hub has no group key")
	}
	return sas.DeriveKey(h.cfg.GroupKey, deviceID), nil
}

// DeviceConnectionString is a ready-to-use connection string for a device: its
// registered primary key, or its group-derived key. gateway, when set, becomes
// GatewayHostName, for hubs listening on non-standard ports.
func (h *Hub) DeviceConnectionString(deviceID, gateway string) (string, error) {
	key, err := h.primaryKey(iothub.Identity{DeviceID: deviceID})
	if err != nil {
		return "", err
	}
	return sas.ConnectionString{HostName: h.cfg.HostName, DeviceID: deviceID, SharedAccessKey: sas.EncodeKey(key), GatewayHostName: gateway}.Encode(), nil
}

func (h *Hub) primaryKey(id iothub.Identity) ([]byte, error) {
	if it := h.lookup(id); it != nil {
		it.mu.Lock()
		defer it.mu.Unlock()
		if it.reg.Auth != AuthSAS {
			return nil, fmt.Errorf("%s authenticates with X.509, not a key", id)
		}
		return it.reg.Keys[0], nil
	}
	if id.ModuleID == "" && h.cfg.GroupKey != nil {
		return sas.DeriveKey(h.cfg.GroupKey, id.DeviceID), nil
	}
	return nil, iothub.Errorf(iothub.CodeDeviceNotFound, "device %q is not registered and the hub has no group key", id.DeviceID)
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

func randomKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand failed: " + err.Error()) // does not happen on supported platforms
	}
	return k
}

// TrustCA adds a certificate authority whose device certificates the hub
// accepts for devices registered with AuthCA.
func (h *Hub) TrustCA(cert *x509.Certificate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cas.AddCert(cert)
	h.nCAs++
}

// Identities lists every registered device and module, sorted.
func (h *Hub) Identities() []iothub.Identity {
	h.mu.RLock()
	out := make([]iothub.Identity, 0, len(h.idents))
	for id := range h.idents {
		out = append(out, id)
	}
	h.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].DeviceID != out[j].DeviceID {
			return out[i].DeviceID < out[j].DeviceID
		}
		return out[i].ModuleID < out[j].ModuleID
	})
	return out
}

func (h *Hub) lookup(id iothub.Identity) *identity {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.idents[id]
}
