package hubtest

import (
	"runtime"
	"strings"
)

// clientGoroutines returns the stacks of goroutines that belong to the
// clients under test: started in package protocols or in paho.
func clientGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "hubtest.clientGoroutines") || strings.Contains(g, "testing.tRunner") || strings.Contains(g, "testing.(*T).Run") {
			continue
		}
		if strings.Contains(g, "catmsim/protocols/") || strings.Contains(g, "paho.mqtt.golang") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
