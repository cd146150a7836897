package mqttconn

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestWorkerRunsInOrderAndStops(t *testing.T) {
	w := NewWorker(4)
	got := make(chan int, 8)
	for i := range 3 {
		if !w.Do(func() { got <- i }) {
			t.Fatalf("job %d refused", i)
		}
	}
	for want := range 3 {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("job %d ran as %d", want, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("jobs did not run")
		}
	}
	// A job blocks the worker; Do waits for room in the queue and gives up
	// when the worker stops.
	release := make(chan struct{})
	started := make(chan struct{})
	w.Do(func() { close(started); <-release })
	<-started
	for range 4 {
		w.Do(func() {})
	}
	refused := make(chan bool)
	go func() { refused <- !w.Do(func() { t.Error("ran after Stop") }) }()
	stopped := make(chan struct{})
	go func() { w.Stop(); close(stopped) }()
	if !<-refused {
		t.Fatal("Do on a full queue returned true after Stop")
	}
	close(release)
	<-stopped
	if w.Do(func() {}) {
		t.Fatal("Do after Stop returned true")
	}
}

func TestCertRefused(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("network Error : %w", errors.New("remote error: tls: certificate required")), true},
		{errors.New("remote error: tls: unknown certificate authority"), true},
		{errors.New("remote error: tls: handshake failure"), false},
		{errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if got := certRefused(tt.err); got != tt.want {
				t.Fatalf("certRefused = %v, want %v", got, tt.want)
			}
		})
	}
}
