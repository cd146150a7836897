package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/protocols"
)

func TestWithProtocol(t *testing.T) {
	base := mustCompile(t, mustLoad(t, "esp32-mqtt-twin"), PlanOptions{})
	tests := []struct {
		proto     protocols.Protocol
		keepAlive time.Duration // 0: kept from the scenario
		twin      bool          // methods and desired still reach the group
		c2dPoll   time.Duration
	}{
		{protocols.AMQP, 0, true, 0},
		{protocols.MQTTWebSocket, 0, true, 0},
		{protocols.HTTPS, 0, false, 25 * time.Minute},
		{protocols.EventHubsHTTPS, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.proto), func(t *testing.T) {
			p, err := base.WithProtocol(tt.proto)
			if err != nil {
				t.Fatal(err)
			}
			for i, pr := range p.Profiles {
				if pr.Protocol != tt.proto {
					t.Errorf("profile %s speaks %s", pr.Name, pr.Protocol)
				}
				if pr.Behaviour.Telemetry != base.Profiles[i].Behaviour.Telemetry || pr.Link != base.Profiles[i].Link {
					t.Errorf("profile %s changed more than its protocol", pr.Name)
				}
				if tt.proto == protocols.AMQP && pr.KeepAlive != base.Profiles[i].KeepAlive {
					t.Errorf("keep-alive %v, scenario had %v", pr.KeepAlive, base.Profiles[i].KeepAlive)
				}
				if time.Duration(pr.HTTPS.C2DPoll) != tt.c2dPoll {
					t.Errorf("C2D poll %v, want %v", pr.HTTPS.C2DPoll, tt.c2dPoll)
				}
			}
			if got := len(p.Cloud.MethodGroups) > 0 && len(p.Cloud.DesiredGroups) > 0; got != tt.twin {
				t.Errorf("methods to %v and desired to %v; want reachable %v", p.Cloud.MethodGroups, p.Cloud.DesiredGroups, tt.twin)
			}
			if p.Seed != base.Seed || p.Len() != base.Len() || p.Name != base.Name {
				t.Error("the comparison plan is not the same fleet")
			}
		})
	}
	// The base plan is untouched.
	if base.Profiles[0].Protocol != protocols.MQTT || len(base.Cloud.MethodGroups) == 0 {
		t.Fatal("WithProtocol changed the plan it copied")
	}
}

func TestWithProtocolRefuses(t *testing.T) {
	base := mustCompile(t, mustLoad(t, "quickstart"), PlanOptions{})
	if _, err := base.WithProtocol("coap"); err == nil || !strings.Contains(err.Error(), "coap") {
		t.Fatalf("got %v", err)
	}
	x := mustCompile(t, mustLoad(t, "x509-generic-mqtt"), PlanOptions{})
	if _, err := x.WithProtocol(protocols.AMQP); err == nil {
		t.Fatal("a generic broker's plan switched protocol")
	}
}
