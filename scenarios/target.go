package scenarios

import (
	"errors"
	"fmt"

	"github.com/catmsim/catmsim/sas"
)

// ErrNoConnectionString is returned when an iothub target's variable is unset.
var ErrNoConnectionString = errors.New("no IoT Hub connection string")

// ConnectionString reads and parses an iothub target's service connection
// string from the environment variable the scenario names. It must be a
// shared access policy's (HostName, SharedAccessKeyName, SharedAccessKey),
// since the run provisions devices and drives the service API. Validation
// never reads the environment, so "sim validate" works without secrets; a
// run calls this before it starts.
func (t Target) ConnectionString(env func(string) string) (sas.ConnectionString, error) {
	if t.Kind != TargetIoTHub {
		return sas.ConnectionString{}, fmt.Errorf("target kind %s has no connection string", t.Kind)
	}
	v := ""
	if env != nil {
		v = env(t.ConnectionStringEnv)
	}
	if v == "" {
		return sas.ConnectionString{}, fmt.Errorf("%w: set %s to a service connection string (HostName=…;SharedAccessKeyName=…;SharedAccessKey=…) of a policy with registry rights",
			ErrNoConnectionString, t.ConnectionStringEnv)
	}
	cs, err := sas.Parse(v)
	if err != nil {
		return sas.ConnectionString{}, fmt.Errorf("%s: %w", t.ConnectionStringEnv, err)
	}
	if k := cs.Kind(); k != sas.KindService {
		return sas.ConnectionString{}, fmt.Errorf("%s holds a %s connection string; the run needs a service one (a shared access policy's, e.g. iothubowner or registryReadWrite)", t.ConnectionStringEnv, k)
	}
	return cs, nil
}
