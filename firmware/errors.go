package firmware

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for errors.Is. A *TrapError matches the one that caused it.
var (
	// ErrTimeout: an entry point did not return within Limits.CallTimeout.
	ErrTimeout = errors.New("firmware call exceeded its time limit")
	// ErrMemoryLimit: the module's memory would exceed Limits.MemoryPages.
	ErrMemoryLimit = errors.New("firmware exceeded its memory limit")
	// ErrABI: the module broke the host ABI (a pointer outside its memory, an
	// unknown outcome).
	ErrABI = errors.New("firmware broke the host ABI")
	// ErrFailed: the instance failed earlier and takes no more calls.
	ErrFailed = errors.New("firmware instance has failed")
	// ErrClosed: the instance was closed.
	ErrClosed = errors.New("firmware instance is closed")
	// ErrNotHandled: the module does not export the entry point for this
	// event; see Module.Handles. The instance is unharmed.
	ErrNotHandled = errors.New("firmware does not handle this event")
	// ErrNoRoom: catmsim_alloc refused the memory for an event's data. The
	// instance is unharmed; the event was not delivered.
	ErrNoRoom = errors.New("firmware has no room for the event's data")
)

// TrapError is the failure of one device's firmware: a wasm trap, a call that
// ran past its time limit, memory beyond the limit, or a broken ABI
// contract. It fails that instance only; the Instance takes no more calls.
type TrapError struct {
	Device string   // the device whose firmware failed; empty for the check Compile makes
	Entry  string   // the export the host was calling ("catmsim_on_timer"), or "start" during instantiation
	Reason string   // what happened, one line: "unreachable", "did not return within its 1s time limit" …
	Stack  []string // the wasm call stack at the trap, innermost first; empty when unknown
	Err    error    // the cause: ErrTimeout, ErrMemoryLimit, an *ABIError, or the runtime's error
}

func (e *TrapError) Error() string {
	var b strings.Builder
	if e.Device != "" {
		fmt.Fprintf(&b, "device %s: ", e.Device)
	}
	fmt.Fprintf(&b, "firmware failed in %s: %s", e.Entry, e.Reason)
	if len(e.Stack) > 0 {
		b.WriteString(" (wasm stack: ")
		b.WriteString(strings.Join(e.Stack, " < "))
		b.WriteString(")")
	}
	return b.String()
}

func (e *TrapError) Unwrap() error { return e.Err }

// ABIError is a module's breach of the host ABI, found by the host: a
// pointer and length that reach outside the module's memory, an allocator
// that returns one, an outcome that is not one of the three.
type ABIError struct {
	Func string // the host function or export involved
	Msg  string // what was wrong, with the values
}

func (e *ABIError) Error() string { return e.Func + ": " + e.Msg }

// Is makes every ABIError match ErrABI.
func (e *ABIError) Is(target error) bool { return target == ErrABI }

// failedError is what calls on a failed or closed instance return: the
// sentinel for the state, and the error that put it there.
type failedError struct {
	entry string
	state error // ErrFailed or ErrClosed
	cause error
}

func (e *failedError) Error() string {
	if e.cause == nil {
		return fmt.Sprintf("calling %s: %v", e.entry, e.state)
	}
	return fmt.Sprintf("calling %s: %v: %v", e.entry, e.state, e.cause)
}

func (e *failedError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.state}
	}
	return []error{e.state, e.cause}
}

// splitTrace separates the runtime's error text from the wasm stack trace
// wazero appends to it.
func splitTrace(msg string) (reason string, stack []string) {
	reason, trace, found := strings.Cut(msg, "\nwasm stack trace:\n")
	if _, after, ok := strings.Cut(reason, "wasm error: "); ok {
		reason = after // also drops wazero's "start function[0] failed: "
	}
	reason = strings.TrimSuffix(reason, " (recovered by wazero)")
	if !found {
		return reason, nil
	}
	for line := range strings.SplitSeq(trace, "\n") {
		// Frames are indented once; source lines under a frame twice, and the
		// Go runtime's trace after a blank line.
		if line == "" {
			break
		}
		if strings.HasPrefix(line, "\t\t") || !strings.HasPrefix(line, "\t") {
			continue
		}
		stack = append(stack, strings.TrimPrefix(strings.TrimSpace(line), "."))
	}
	return reason, stack
}
