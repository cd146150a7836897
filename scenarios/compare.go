package scenarios

import (
	"fmt"
	"time"

	"github.com/catmsim/catmsim/protocols"
)

// Comparable lists the protocols a plan can be switched to for a comparison:
// IoT Hub's device protocols and Event Hubs REST (a generic broker is a
// different target).
var Comparable = []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket, protocols.AMQP, protocols.AMQPWebSocket, protocols.HTTPS, protocols.EventHubsHTTPS}

// WithProtocol returns a copy of the plan in which every profile speaks proto,
// with the same links, behaviour, schedule and seeds, so that a comparison
// differs only in the protocol. Options the new protocol needs and the old one
// did not have take their defaults (MQTT QoS 1 and a 240 s keep-alive, an
// HTTPS C2D poll of 25 minutes, an event hub named "telemetry"), and the
// cloud-side drivers reach only the groups whose new protocol can take them.
func (p *Plan) WithProtocol(proto protocols.Protocol) (*Plan, error) {
	ok := false
	for _, c := range Comparable {
		ok = ok || c == proto
	}
	if !ok {
		return nil, fmt.Errorf("protocol %q cannot be compared; use one of %v", proto, Comparable)
	}
	if p.Target.Kind == TargetMQTT {
		return nil, fmt.Errorf("the scenario targets a generic MQTT broker, which speaks no other protocol")
	}
	q := *p
	q.Profiles = make([]PlanProfile, len(p.Profiles))
	for i, pr := range p.Profiles {
		old := pr.Protocol
		pr.Protocol = proto
		mqttLike := proto == protocols.MQTT || proto == protocols.MQTTWebSocket
		amqpLike := proto == protocols.AMQP || proto == protocols.AMQPWebSocket
		wasPersistent := protoIn(old, []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket, protocols.AMQP, protocols.AMQPWebSocket})
		if (mqttLike || amqpLike) && !wasPersistent {
			pr.KeepAlive = Duration(240 * time.Second)
		}
		if mqttLike && pr.QoS == 0 && !(old == protocols.MQTT || old == protocols.MQTTWebSocket) {
			pr.QoS = 1
		}
		if proto == protocols.HTTPS && pr.HTTPS.C2DPoll == 0 {
			pr.HTTPS.C2DPoll = Duration(25 * time.Minute)
		}
		if proto == protocols.EventHubsHTTPS {
			if pr.EventHub == "" {
				pr.EventHub = "telemetry"
			}
			if pr.Auth == "x509" {
				return nil, fmt.Errorf("profile %s authenticates with X.509, which Event Hubs REST does not take", pr.Name)
			}
		}
		q.Profiles[i] = pr
	}
	if c := p.Cloud; c.C2D != nil || c.Methods != nil || c.Desired != nil {
		q.Cloud = PlanCloud{C2D: c.C2D, Methods: c.Methods, Desired: c.Desired}
		if c.C2D != nil {
			q.Cloud.C2DGroups = q.receivers(c.C2D.To, canC2D)
		}
		if c.Methods != nil {
			q.Cloud.MethodGroups = q.receivers(c.Methods.To, canTwin)
		}
		if c.Desired != nil {
			q.Cloud.DesiredGroups = q.receivers(c.Desired.To, canTwin)
		}
	}
	return &q, nil
}
