package iothub

import "testing"

func FuzzParseAMQPAddress(f *testing.F) {
	for _, s := range []string{"$cbs", "/devices/d/messages/events", "amqps://h/devices/d%231/modules/m/twin", "/devices/d/messages/deviceBound",
		"/devices/d/methods/devicebound?x=1", "/messages/serviceBound/feedback", "/messages/devicebound", "devices/50%/twin"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		a, err := ParseAMQPAddress(addr)
		if err != nil {
			return
		}
		if a.Node == AMQPNodeUnknown {
			t.Fatalf("%q parsed with no node", addr)
		}
		// A device node's path form names the same node and identity.
		if a.Identity.DeviceID != "" {
			if ValidateID(a.Identity.DeviceID) != nil || (a.Identity.ModuleID != "" && ValidateID(a.Identity.ModuleID) != nil) {
				t.Fatalf("%q gave invalid ids %+v", addr, a.Identity)
			}
			b, err := ParseAMQPAddress(AMQPPath(a.Node, a.Identity))
			if err != nil || b.Node != a.Node || b.Identity != a.Identity {
				t.Fatalf("%q: %+v; its path %q parses to %+v, %v", addr, a, AMQPPath(a.Node, a.Identity), b, err)
			}
		}
	})
}

func FuzzParseSASLPlainUsername(f *testing.F) {
	for _, s := range []string{"dev1@sas.hub", "service@sas.root.hub", "d/m@sas.hub", "a@b@sas.hub"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseSASLPlainUsername(s)
		if err != nil {
			return
		}
		var back string
		if u.Policy != "" {
			back = FormatSASLPlainPolicyUsername(u.Policy, u.HubName)
		} else {
			back = FormatSASLPlainUsername(u.Identity, u.HubName)
		}
		again, err := ParseSASLPlainUsername(back)
		if err != nil || again != u {
			t.Fatalf("%q parsed as %+v; formatted back as %q, which parses as %+v, %v", s, u, back, again, err)
		}
	})
}
