package protocols

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// Standard ports of the hub's endpoints.
const (
	PortMQTT  = 8883
	PortAMQP  = 5671
	PortHTTPS = 443
)

// DefaultRenewAt is the fraction of a token's life after which clients renew
// it, as the C SDK does.
const DefaultRenewAt = 0.8

// CheckCommon validates what every client needs: a host name, a dialer with a
// link, an identity IoT Hub accepts, QoS 0 or 1, sane TLS versions and a
// renewal fraction between 0 and 1. Errors name the field.
func (c *Config) CheckCommon() error {
	var errs []error
	if c.HostName == "" {
		errs = append(errs, errors.New("config.HostName: must name the hub (e.g. myhub.azure-devices.net)"))
	}
	if c.Dialer == nil || c.Dialer.Link == nil {
		errs = append(errs, errors.New("config.Dialer: must be a network.Dialer with a Link, so that every byte is metered"))
	}
	if err := iothub.ValidateID(c.Identity.DeviceID); err != nil {
		errs = append(errs, fmt.Errorf("config.Identity.DeviceID: %w", err))
	}
	if c.Identity.ModuleID != "" {
		if err := iothub.ValidateID(c.Identity.ModuleID); err != nil {
			errs = append(errs, fmt.Errorf("config.Identity.ModuleID: %w", err))
		}
	}
	if c.QoS > 1 {
		errs = append(errs, fmt.Errorf("config.QoS: must be 0 or 1 (got %d); IoT Hub closes the connection on QoS 2", c.QoS))
	}
	if c.Auth.RenewAt < 0 || c.Auth.RenewAt >= 1 {
		errs = append(errs, fmt.Errorf("config.Auth.RenewAt: must be a fraction of the token lifetime in (0, 1), or 0 for %v (got %v)", DefaultRenewAt, c.Auth.RenewAt))
	}
	if c.Auth.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("config.Auth.TokenTTL: must be positive, or 0 for %s (got %s)", sas.DefaultTTL, c.Auth.TokenTTL))
	}
	if c.TLS.MinVersion != 0 && c.TLS.MaxVersion != 0 && c.TLS.MinVersion > c.TLS.MaxVersion {
		errs = append(errs, errors.New("config.TLS.MinVersion: is above TLS.MaxVersion"))
	}
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			errs = append(errs, fmt.Errorf("config.Address: must be host:port (got %q)", c.Address))
		}
	}
	return errors.Join(errs...)
}

// CheckIoTHubAuth validates the credentials for IoT Hub: exactly one of a key,
// a ready-made token or a client certificate.
func (c *Config) CheckIoTHubAuth() error {
	n := 0
	for _, set := range []bool{len(c.Auth.Key) > 0, c.Auth.Token != "", c.Auth.Certificate != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("config.Auth: set exactly one of Key, Token or Certificate (%d are set)", n)
	}
	return nil
}

// Addr is where the client's socket goes: Address, or HostName on the given
// standard port.
func (c *Config) Addr(standardPort int) string {
	if c.Address != "" {
		return c.Address
	}
	return net.JoinHostPort(c.HostName, strconv.Itoa(standardPort))
}

// Clock returns Now, or time.Now when it is nil.
func (c *Config) Clock() func() time.Time {
	if c.Now != nil {
		return c.Now
	}
	return time.Now
}

// APIVersionOrDefault is the api-version to send.
func (c *Config) APIVersionOrDefault() string {
	if c.APIVersion != "" {
		return c.APIVersion
	}
	return iothub.APIVersion
}

// TLSConfig builds the client TLS configuration from TLSOptions and the
// credentials' certificate.
func (c *Config) TLSConfig() *tls.Config {
	o := c.TLS
	cfg := &tls.Config{
		RootCAs:    o.RootCAs,
		ServerName: o.ServerName,
		MinVersion: o.MinVersion,
		MaxVersion: o.MaxVersion,
		// Go offers a post-quantum X25519MLKEM768 key share by default, which
		// makes a ClientHello about 1.5 KB; a FiPy's mbedTLS sends about 300 B
		// with X25519 or P-256, so those are all we offer, to keep handshake
		// bytes realistic.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.HostName
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.MaxVersion == 0 {
		cfg.MaxVersion = tls.VersionTLS13
	}
	if o.Resumption {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	} else {
		cfg.SessionTicketsDisabled = true
	}
	if c.Auth.Certificate != nil {
		cfg.Certificates = []tls.Certificate{*c.Auth.Certificate}
	}
	return cfg
}

// Tokens hands out a device's SAS tokens: a ready-made one as is, or tokens
// signed with its key for TokenTTL, renewed once RenewAt of their life has
// passed. It is safe for concurrent use.
type Tokens struct {
	src     sas.TokenSource
	fixed   string
	renewAt float64
	now     func() time.Time

	mu      sync.Mutex
	current string
	renewBy time.Time
}

// NewTokens returns the token source for a device's credentials and the
// resource it signs for. It returns nil when the device uses a certificate.
func (c *Config) NewTokens(resource string) *Tokens {
	if c.Auth.Token == "" && len(c.Auth.Key) == 0 {
		return nil
	}
	t := &Tokens{fixed: c.Auth.Token, renewAt: c.Auth.RenewAt, now: c.Clock()}
	if t.renewAt == 0 {
		t.renewAt = DefaultRenewAt
	}
	t.src = sas.TokenSource{Resource: resource, Key: c.Auth.Key, KeyName: c.Auth.KeyName, TTL: c.Auth.TokenTTL, Now: t.now}
	return t
}

// Renewable reports whether the tokens are signed here (and so can be renewed).
func (t *Tokens) Renewable() bool { return t != nil && t.fixed == "" }

// Fresh signs a new token and returns it with the time by which it should be
// renewed: RenewAt of the way from now to its expiry. A ready-made token is
// returned as is, with a zero renewal time.
func (t *Tokens) Fresh() (string, time.Time) {
	if t.fixed != "" {
		return t.fixed, time.Time{}
	}
	now := t.now()
	tok, exp := t.src.Token()
	// The expiry is truncated to the second, so the renewal point is computed
	// from it rather than from the nominal TTL.
	renew := now.Add(time.Duration(float64(exp.Sub(now)) * t.renewAt))
	t.mu.Lock()
	t.current, t.renewBy = tok, renew
	t.mu.Unlock()
	return tok, renew
}

// Current returns the token in use, signing a new one when there is none or
// the current one has reached its renewal time.
func (t *Tokens) Current() string {
	if t.fixed != "" {
		return t.fixed
	}
	t.mu.Lock()
	tok, renew := t.current, t.renewBy
	t.mu.Unlock()
	if tok != "" && t.now().Before(renew) {
		return tok
	}
	tok, _ = t.Fresh()
	return tok
}
