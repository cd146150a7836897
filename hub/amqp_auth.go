package hub

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// amqpAuth is what a connection has proven: the SAS tokens it presented (by
// CBS put-token or SASL PLAIN) and whether its TLS client certificate may
// stand for a device (always, when one was presented: the C SDK's X.509
// devices use no SASL; SASL EXTERNAL says so explicitly).
type amqpAuth struct {
	claims []*amqpClaim
	// plain marks a connection bound to its SASL PLAIN token: when that
	// token expires the connection closes ("when the token expires, the TCP
	// connection disconnects", D-SAS).
	plain bool
}

// amqpClaim is one token a connection presented.
type amqpClaim struct {
	token    string
	audience string // the token's sr, decoded
	expiry   time.Time
	identity iothub.Identity // set when the audience names a device or module
	policy   string
	rights   Rights
}

// covers reports whether the claim's audience grants access to resource.
func (cl *amqpClaim) covers(resource string) bool { return sas.Covers(cl.audience, resource) }

// sasl runs the SASL exchange: mechanisms, init, outcome.
func (c *amqpConn) sasl() error {
	hdr := amqpwire.ProtocolSASL.Header().Bytes()
	c.mu.Lock()
	c.rawLocked(hdr[:])
	c.frameLocked(amqpwire.FrameSASL, 0, &amqpwire.SASLMechanisms{Mechanisms: amqpMechanisms}, nil)
	c.mu.Unlock()
	f, err := c.fr.ReadFrame()
	if err != nil {
		return err
	}
	var p amqpwire.Performative
	if f.Type == amqpwire.FrameSASL {
		p, _, err = f.Performative()
	}
	init, ok := p.(*amqpwire.SASLInit)
	if err != nil || !ok {
		c.saslOutcome(amqpwire.SASLSysPerm)
		return fmt.Errorf("sasl: expected sasl-init, got a %s frame (%v)", f.Type, err)
	}
	if err := c.saslInit(init); err != nil {
		c.saslOutcome(amqpwire.SASLAuth)
		c.h.log.Info("AMQP SASL authentication failed", "remote", c.remote, "mechanism", string(init.Mechanism), "reason", err.Error())
		return fmt.Errorf("sasl %s: %w", init.Mechanism, err)
	}
	c.saslOutcome(amqpwire.SASLOK)
	return nil
}

func (c *amqpConn) saslOutcome(code amqpwire.SASLCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frameLocked(amqpwire.FrameSASL, 0, &amqpwire.SASLOutcome{Code: code}, nil)
	if code != amqpwire.SASLOK {
		c.closing = true
		c.closeSent = true
		c.flushLocked()
	}
}

func (c *amqpConn) saslInit(init *amqpwire.SASLInit) error {
	switch init.Mechanism {
	case "MSSBCBS", "ANONYMOUS":
		return nil // the peer authenticates on $cbs
	case "EXTERNAL":
		if len(c.certs) == 0 {
			return errors.New("SASL EXTERNAL needs a TLS client certificate, and the client presented none")
		}
		return nil // each device link is authorized with the certificate
	case "PLAIN":
		_, user, pass, err := amqpwire.SplitPlain(init.InitialResponse)
		if err != nil {
			return err
		}
		u, err := iothub.ParseSASLPlainUsername(user)
		if err != nil {
			return err
		}
		if want := iothub.HubName(c.h.HostName()); !strings.EqualFold(u.HubName, want) {
			return fmt.Errorf("username %q names hub %q; this hub is %q", user, u.HubName, want)
		}
		cl, _, err := c.verifyToken(pass, "")
		if err != nil {
			return err
		}
		switch {
		case u.Policy != "" && cl.policy != u.Policy:
			return fmt.Errorf("username names policy %q but the token is signed with %q", u.Policy, cl.policy)
		case u.Policy == "" && cl.identity != u.Identity && (cl.rights&DeviceConnect == 0 || !cl.covers(deviceResource(c.h, u.Identity))):
			return fmt.Errorf("username names %s but the token is for %q", describe(u.Identity), cl.audience)
		}
		c.mu.Lock()
		c.auth.plain = true
		c.auth.claims = append(c.auth.claims, cl)
		// The connection lives as long as its token (D-SAS), links or not.
		c.timers.plain = time.AfterFunc(cl.expiry.Sub(c.h.now()), func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if !c.stopped {
				c.closeLocked(amqpwire.ConditionUnauthorizedAccess, "the SASL PLAIN token expired")
			}
		})
		c.mu.Unlock()
		return nil
	}
	return fmt.Errorf("mechanism %q is not offered (MSSBCBS, ANONYMOUS, PLAIN or EXTERNAL)", init.Mechanism)
}

// verifyToken checks a SAS token as the hub does and returns what it proves.
// name, when set, is the CBS request's audience, which must lie within the
// token's scope: the hub does not take it on trust (spec §3.3). The status
// is the CBS status-code for a failure: 401 for a bad, expired or foreign
// token, 404 for an unknown device.
func (c *amqpConn) verifyToken(token, name string) (*amqpClaim, int, error) {
	t, err := sas.ParseToken(token)
	if err != nil {
		c.authFailed(iothub.Identity{}, err)
		return nil, 401, err
	}
	if !sas.Covers(c.h.HostName(), t.Resource) {
		err := fmt.Errorf("the token is for %q, not this hub (%s)", t.Resource, c.h.HostName())
		c.authFailed(iothub.Identity{}, err)
		return nil, 401, err
	}
	if name != "" {
		n, ok := iothub.Unescape(name)
		if !ok || !sas.Covers(t.Resource, n) {
			err := fmt.Errorf("the put-token names %q, which the token (scoped to %q) does not cover", name, t.Resource)
			c.authFailed(iothub.Identity{}, err)
			return nil, 401, err
		}
	}
	cl := &amqpClaim{token: token, audience: t.Resource, expiry: t.Expiry}
	a, err := sas.ParseAudience(t.Resource)
	if err != nil {
		c.authFailed(iothub.Identity{}, err)
		return nil, 401, err
	}
	if a.DeviceID != "" {
		id := iothub.Identity{DeviceID: a.DeviceID, ModuleID: a.ModuleID}
		p, err := c.h.Authenticate(id, Credentials{Token: token})
		if err != nil {
			var he *iothub.Error
			if errors.Is(err, sas.ErrUnknownIdentity) || (errors.As(err, &he) && he.Code == iothub.CodeDeviceNotFound) {
				return nil, 404, err
			}
			return nil, 401, err
		}
		cl.identity, cl.policy, cl.rights = id, p.Policy, p.Rights
		return cl, 200, nil
	}
	// A hub-level token (sr = host, or host/devices for a gateway) must be
	// signed with a policy key.
	v := sas.Verifier{Keys: keyFinder{c.h}, Now: c.h.now}
	if err := v.Check(t, ""); err != nil {
		c.authFailed(iothub.Identity{}, err)
		return nil, 401, err
	}
	pol, ok := c.h.Policy(t.KeyName)
	if !ok {
		err := fmt.Errorf("no shared access policy %q", t.KeyName)
		c.authFailed(iothub.Identity{}, err)
		return nil, 401, err
	}
	cl.policy, cl.rights = pol.Name, pol.Rights
	return cl, 200, nil
}

func (c *amqpConn) authFailed(id iothub.Identity, err error) {
	c.h.stats.AuthFailures.Add(1)
	c.h.emit(Event{Kind: EventAuthFailed, Identity: id, Protocol: c.proto, Detail: err.Error()})
}

// putToken handles one CBS request and returns the status-code and
// status-description of the answer. A token for an audience the connection
// already holds replaces it, which is how clients renew: the hub connections
// it covers get the new expiry (Conn.RenewToken).
func (c *amqpConn) putToken(op, typ, name, token string) (int, string) {
	switch op {
	case iothub.CBSPutToken:
	case iothub.CBSDeleteToken:
		n, _ := iothub.Unescape(name)
		c.mu.Lock()
		kept := c.auth.claims[:0]
		for _, cl := range c.auth.claims {
			if cl.audience != n {
				kept = append(kept, cl)
			}
		}
		c.auth.claims = kept
		c.mu.Unlock()
		return 200, "OK"
	default:
		return 400, fmt.Sprintf("operation %q is not put-token or delete-token", op)
	}
	if !iothub.IsCBSSASType(typ) {
		return 400, fmt.Sprintf("token type %q is not supported; send a SAS token with type %s", typ, iothub.CBSTokenTypeSAS)
	}
	if name == "" || token == "" {
		return 400, "a put-token needs the name application property and the token as its body"
	}
	cl, status, err := c.verifyToken(token, name)
	if err != nil {
		c.h.log.Info("CBS put-token refused", "remote", c.remote, "status", status, "reason", err.Error())
		if status == 404 {
			return 404, "Not Found: " + err.Error()
		}
		return status, "Unauthorized: " + err.Error()
	}
	c.mu.Lock()
	replaced := false
	for i, old := range c.auth.claims {
		if old.audience == cl.audience && old.identity == cl.identity && old.policy == cl.policy {
			c.auth.claims[i] = cl
			replaced = true
			break
		}
	}
	if !replaced {
		if len(c.auth.claims) >= c.opts.maxClaims {
			c.mu.Unlock()
			return 403, fmt.Sprintf("the connection already holds %d tokens", c.opts.maxClaims)
		}
		c.auth.claims = append(c.auth.claims, cl)
	}
	var renew []*amqpDevice
	for id, d := range c.devices {
		if cl.covers(deviceResource(c.h, id)) && (cl.identity == id || cl.rights&DeviceConnect != 0) {
			renew = append(renew, d)
		}
	}
	if cl.rights&ServiceConnect != 0 && cl.covers(c.h.HostName()) {
		c.armServiceExpiryLocked()
	}
	c.mu.Unlock()
	for _, d := range renew {
		p, err := c.h.Authenticate(d.id, Credentials{Token: token})
		if err == nil {
			err = d.conn.RenewToken(p)
		}
		if err != nil {
			c.h.log.Info("CBS renewal not applied", "identity", d.id.String(), "reason", err.Error())
		}
	}
	return 200, "OK"
}

func deviceResource(h *Hub, id iothub.Identity) string {
	return sas.DeviceResource(h.HostName(), id.DeviceID, id.ModuleID)
}

// authorizeDevice finds what lets this connection act as id: a token whose
// scope covers the identity (its own, or a policy's with DeviceConnect), or
// the TLS client certificate. A token counts as expired from its se on, the
// moment the hub closes connections that rely on it, although the token
// check itself, in whole seconds, takes it until the second is over.
func (c *amqpConn) authorizeDevice(id iothub.Identity) (*Principal, error) {
	res := deviceResource(c.h, id)
	now := c.h.now()
	c.mu.Lock()
	var tokens []string
	for i := len(c.auth.claims) - 1; i >= 0; i-- {
		cl := c.auth.claims[i]
		if cl.covers(res) && now.Before(cl.expiry) && (cl.identity == id || cl.rights&DeviceConnect != 0) {
			tokens = append(tokens, cl.token)
		}
	}
	certs := c.certs
	c.mu.Unlock()
	var lastErr error
	for _, tok := range tokens {
		p, err := c.h.Authenticate(id, Credentials{Token: tok})
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	if len(certs) > 0 {
		p, err := c.h.Authenticate(id, Credentials{Certs: certs})
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	if lastErr != nil {
		return nil, iothub.Errorf(iothub.CodeUnauthorized, "%v", lastErr)
	}
	return nil, iothub.Errorf(iothub.CodeUnauthorized, "no token on this connection grants access to %s; send a put-token on $cbs for it first", describe(id))
}

// authorizeService finds a token of a policy with ServiceConnect scoped to
// the hub, and returns its expiry.
func (c *amqpConn) authorizeService() (time.Time, error) {
	now := c.h.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.auth.claims) - 1; i >= 0; i-- {
		cl := c.auth.claims[i]
		if cl.rights&ServiceConnect != 0 && cl.covers(c.h.HostName()) && now.Before(cl.expiry) {
			return cl.expiry, nil
		}
	}
	return time.Time{}, iothub.Errorf(iothub.CodeUnauthorized, "no token of a policy with ServiceConnect (service, iothubowner) scoped to %s is on this connection; send a put-token on $cbs first", c.h.HostName())
}

// armServiceExpiryLocked makes the service links end when the last service
// token expires: they are detached with amqp:unauthorized-access.
func (c *amqpConn) armServiceExpiryLocked() {
	var latest time.Time
	for _, cl := range c.auth.claims {
		if cl.rights&ServiceConnect != 0 && cl.covers(c.h.HostName()) && cl.expiry.After(latest) {
			latest = cl.expiry
		}
	}
	if latest.IsZero() {
		return
	}
	d := latest.Sub(c.h.now())
	if c.timers.service == nil {
		c.timers.service = time.AfterFunc(d, c.serviceExpired)
	} else {
		c.timers.service.Reset(d)
	}
}

func (c *amqpConn) serviceExpired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	now := c.h.now()
	for _, cl := range c.auth.claims {
		if cl.rights&ServiceConnect != 0 && cl.covers(c.h.HostName()) && now.Before(cl.expiry) {
			c.armServiceExpiryLocked() // renewed meanwhile
			return
		}
	}
	if c.auth.plain {
		c.closeLocked(amqpwire.ConditionUnauthorizedAccess, "the service token expired")
		return
	}
	for _, s := range c.sessions {
		for _, l := range s.links {
			if l.svc && !l.detached {
				c.detachLocked(l, amqpwire.ConditionUnauthorizedAccess, "the service token expired; send a new put-token and attach again")
			}
		}
	}
}

// cbsRequest answers a put-token on the $cbs sender link. The answer goes
// pre-settled on the peer's $cbs receiver link, with the request's message-id
// as correlation-id in the same AMQP type and status-code as an AMQP int
// (spec §3.3).
func (c *amqpConn) cbsRequest(l *amqpLink, in *amqpIn) amqpwire.DeliveryState {
	msg, err := amqpwire.DecodeMessage(in.buf)
	if err != nil {
		return amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpwire.ConditionDecodeError, Description: err.Error()}}
	}
	str := func(key string) string {
		v, _ := msg.ApplicationProperties.GetString(key)
		s, _ := iothub.AMQPValueText(v)
		return s
	}
	var token string
	switch {
	case msg.HasValue:
		token, _ = iothub.AMQPValueText(msg.Value)
	case len(msg.Data) > 0:
		token = string(joinData(msg.Data))
	}
	status, desc := c.putToken(str(iothub.CBSOperation), str(iothub.CBSType), str(iothub.CBSName), token)
	var corr any
	var replyTo string
	if msg.Properties != nil {
		corr = msg.Properties.MessageID
		if corr == nil {
			corr = msg.Properties.CorrelationID
		}
		replyTo = msg.Properties.ReplyTo
	}
	reply := &amqpwire.Message{
		Properties: &amqpwire.Properties{CorrelationID: corr},
		ApplicationProperties: amqpwire.NewMap(
			amqpwire.MapEntry{Key: iothub.CBSStatusCode, Value: int32(status)},
			amqpwire.MapEntry{Key: iothub.CBSStatusDescription, Value: desc},
		),
		HasValue: true,
	}
	payload, err := reply.Encode(nil)
	if err != nil {
		return amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpwire.ConditionDecodeError, Description: err.Error()}}
	}
	c.mu.Lock()
	if to := c.cbsReplyLinkLocked(l.s, replyTo); to != nil {
		c.sendLocked(to, &amqpOut{settled: true, payload: payload})
	}
	c.mu.Unlock()
	return amqpwire.Accepted{}
}

// cbsReplyLinkLocked picks the $cbs receiver link an answer goes on: the one
// whose target is the request's reply-to (.NET), else one in the request's
// session (Node, C), else any.
func (c *amqpConn) cbsReplyLinkLocked(s *amqpSession, replyTo string) *amqpLink {
	var inSession, any *amqpLink
	for _, ss := range c.sessions {
		for _, l := range ss.links {
			if l.node != iothub.AMQPNodeCBS || l.role != amqpwire.RoleSender || l.detached {
				continue
			}
			if replyTo != "" && l.target == replyTo {
				return l
			}
			if ss == s && inSession == nil {
				inSession = l
			}
			if any == nil {
				any = l
			}
		}
	}
	if inSession != nil {
		return inSession
	}
	return any
}
