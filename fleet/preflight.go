package fleet

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Limits are the machine limits that bite when a process holds thousands of
// connections.
type Limits struct {
	OpenFiles      uint64 // RLIMIT_NOFILE (soft)
	OpenFilesHard  uint64
	EphemeralPorts uint64 // size of net.ipv4.ip_local_port_range; 0 if unknown
	MemAvailable   uint64 // bytes; 0 if unknown
}

// Needs are what a run is estimated to use at its peak.
type Needs struct {
	Devices        int
	OpenFiles      uint64
	EphemeralPorts uint64
	Memory         uint64
}

// ReadLimits reads the limits of this process and machine from the kernel and
// /proc; a value it cannot read is left zero and not checked.
func ReadLimits() Limits {
	var l Limits
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err == nil {
		l.OpenFiles, l.OpenFilesHard = r.Cur, r.Max
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.ParseUint(f[0], 10, 32)
			hi, err2 := strconv.ParseUint(f[1], 10, 32)
			if err1 == nil && err2 == nil && hi >= lo {
				l.EphemeralPorts = hi - lo + 1
			}
		}
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "MemAvailable:" {
				kb, _ := strconv.ParseUint(fs[1], 10, 64)
				l.MemAvailable = kb * 1024
			}
		}
		f.Close()
	}
	return l
}

// baseFiles is what the process holds besides device connections: standard
// streams, the emulator's listeners, report files, the Go runtime.
const baseFiles = 64

// Estimate says what a run of devices will use. perDeviceFiles is 0 for the
// in-memory transport, 1 for connections to an external target and 2 when the
// emulator in the same process holds the other end of each kernel socket;
// perDeviceMemory comes from the fleet benchmark for the protocol.
func Estimate(devices, perDeviceFiles int, perDeviceMemory uint64, kernelSockets bool) Needs {
	n := Needs{Devices: devices, OpenFiles: baseFiles + uint64(devices*perDeviceFiles), Memory: uint64(devices) * perDeviceMemory}
	if kernelSockets {
		n.EphemeralPorts = uint64(devices)
	}
	return n
}

// Check refuses a run that cannot fit, naming the limit to raise and how.
// Memory is checked against what is available with a margin, because the
// estimate is a benchmark's figure, not a promise.
func Check(n Needs, l Limits) error {
	var problems []string
	if l.OpenFiles > 0 && n.OpenFiles > l.OpenFiles {
		hint := fmt.Sprintf("raise it with `ulimit -n %d`", n.OpenFiles+n.OpenFiles/10)
		if l.OpenFilesHard > 0 && n.OpenFiles > l.OpenFilesHard {
			hint = fmt.Sprintf("the hard limit is %d, so raise that first (limits.conf, or the container's nofile ulimit)", l.OpenFilesHard)
		}
		problems = append(problems, fmt.Sprintf("%d devices need about %d open files but this process may open %d: %s, or use `target.transport: memory` against the embedded hub, which needs none", n.Devices, n.OpenFiles, l.OpenFiles, hint))
	}
	if l.EphemeralPorts > 0 && n.EphemeralPorts > l.EphemeralPorts {
		problems = append(problems, fmt.Sprintf("%d devices need %d local TCP ports but net.ipv4.ip_local_port_range offers %d: widen it (sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"), split the fleet with --shard, or use the in-memory transport", n.Devices, n.EphemeralPorts, l.EphemeralPorts))
	}
	if l.MemAvailable > 0 && n.Memory > l.MemAvailable*9/10 {
		problems = append(problems, fmt.Sprintf("%d devices need about %s of memory but %s is available: run fewer devices per process with --shard i/N", n.Devices, human(n.Memory), human(l.MemAvailable)))
	}
	if len(problems) == 0 {
		return nil
	}
	return &PreflightError{Problems: problems}
}

// PreflightError is a run refused before it started.
type PreflightError struct{ Problems []string }

func (e *PreflightError) Error() string {
	return "the run does not fit this machine: " + strings.Join(e.Problems, "; ")
}

func human(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", b>>10)
	}
}
