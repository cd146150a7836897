package network

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catmsim/catmsim/internal/memnet"
)

// slowProfile has round numbers: 100 ms RTT without jitter, 80 kbit/s both
// ways (10 bytes per millisecond), no loss, no attach or RRC delay.
func slowProfile() Profile {
	p, _ := BuiltinProfile("typical")
	p.RTT, p.RTTJitter = 100*time.Millisecond, 0
	p.UplinkBPS, p.DownlinkBPS = 80_000, 80_000
	p.Loss = 0
	p.AttachTime, p.RRCSetup = 0, 0
	return p
}

// serial is the serialisation time of n stream bytes in one segment burst at
// 80 kbit/s with 40-byte headers.
func serial(n int) time.Duration {
	segs := (n + 1389) / 1390
	return time.Duration(n+40*segs) * time.Millisecond / 10
}

// dialMem dials over memnet inside a synctest bubble and returns the link,
// the device's conn and the server's end.
func dialMem(t *testing.T, p Profile, seed uint64) (*Link, *Conn, net.Conn) {
	t.Helper()
	ln := memnet.Listen("hub")
	t.Cleanup(func() { ln.Close() })
	l, err := NewLink(p, LinkOptions{Rand: rand.New(rand.NewPCG(seed, 0))})
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{Link: l, Transport: MemTransport(map[string]*memnet.Listener{"hub:8883": ln})}
	accepted := make(chan net.Conn, 1)
	go func() {
		s, _ := ln.Accept()
		accepted <- s
	}()
	c, err := d.Dial(context.Background(), "tcp", "hub:8883")
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return l, c, s
}

// readAt reads n bytes and returns how long after start they were all there.
func readAt(t *testing.T, r io.Reader, n int, start time.Time) time.Duration {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	return time.Since(start)
}

func TestLinkTiming(t *testing.T) {
	half := 50 * time.Millisecond
	tests := []struct {
		name string
		run  func(t *testing.T, c *Conn, s net.Conn) (got, want time.Duration)
	}{
		{"uplink: serialisation then half the RTT", func(t *testing.T, c *Conn, s net.Conn) (time.Duration, time.Duration) {
			start := time.Now()
			c.Write(make([]byte, 1000))
			if d := time.Since(start); d != 0 {
				t.Errorf("Write blocked for %v; it should return once the bytes are in flight", d)
			}
			return readAt(t, s, 1000, start), serial(1000) + half
		}},
		{"downlink: half the RTT then serialisation", func(t *testing.T, c *Conn, s net.Conn) (time.Duration, time.Duration) {
			start := time.Now()
			s.Write(make([]byte, 1000))
			return readAt(t, c, 1000, start), half + serial(1000)
		}},
		{"back-to-back writes queue on the uplink", func(t *testing.T, c *Conn, s net.Conn) (time.Duration, time.Duration) {
			start := time.Now()
			c.Write(make([]byte, 1000))
			c.Write(make([]byte, 500))
			return readAt(t, s, 1500, start), serial(1000) + serial(500) + half
		}},
		{"a burst larger than the MSS", func(t *testing.T, c *Conn, s net.Conn) (time.Duration, time.Duration) {
			start := time.Now()
			c.Write(make([]byte, 5000))
			return readAt(t, s, 5000, start), serial(5000) + half
		}},
		{"idle radio: RRC set-up first", func(t *testing.T, c *Conn, s net.Conn) (time.Duration, time.Duration) {
			time.Sleep(11 * time.Second) // past the 10 s inactivity timer
			start := time.Now()
			c.Write(make([]byte, 100))
			return readAt(t, s, 100, start), 250*time.Millisecond + serial(100) + half
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := slowProfile()
				p.RRCSetup = 250 * time.Millisecond
				_, c, s := dialMem(t, p, 1)
				got, want := tc.run(t, c, s)
				if got != want {
					t.Fatalf("delivered after %v, want %v", got, want)
				}
			})
		})
	}
}

func TestDialWaitsForAttachAndHandshake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := slowProfile()
		p.AttachTime = 6 * time.Second
		start := time.Now()
		dialMem(t, p, 1)
		// Attach, SYN (44 B) up, the RTT, SYN-ACK (52 B) down.
		want := 6*time.Second + 4400*time.Microsecond + 100*time.Millisecond + 5200*time.Microsecond
		if got := time.Since(start); got != want {
			t.Fatalf("dial took %v, want %v", got, want)
		}
	})
}

func TestPSMHoldsDownlinkUntilTheDeviceWakes(t *testing.T) {
	p := slowProfile()
	p.PSM = true
	p.RRCSetup = 300 * time.Millisecond
	t.Run("woken by its own uplink", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, c, s := dialMem(t, p, 1)
			time.Sleep(time.Minute) // released after 10 s, asleep after 26 s
			got := make(chan time.Time, 1)
			go func() {
				io.ReadFull(c, make([]byte, 100))
				got <- time.Now()
			}()
			s.Write(make([]byte, 100))
			time.Sleep(10 * time.Minute)
			synctest.Wait()
			select {
			case <-got:
				t.Fatal("downlink reached a device asleep in PSM")
			default:
			}
			woke := time.Now()
			c.Write([]byte("uplink"))
			at := <-got
			// The uplink's RRC set-up, then the downlink's serialisation.
			if want := woke.Add(300*time.Millisecond + serial(100)); !at.Equal(want) {
				t.Fatalf("delivered %v after the wake-up, want %v", at.Sub(woke), want.Sub(woke))
			}
		})
	})
	t.Run("or by its periodic TAU", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l, c, s := dialMem(t, p, 1)
			time.Sleep(time.Minute)
			l.mu.Lock()
			release := l.radio.connUntil
			tau := release.Add(p.T3412)
			page := l.radio.nextPagingOccasion(tau) // in the active time after the TAU
			l.mu.Unlock()
			start := time.Now()
			s.Write(make([]byte, 100))
			got := start.Add(readAt(t, c, 100, start))
			if want := page.Add(300*time.Millisecond + serial(100)); !got.Equal(want) {
				t.Fatalf("delivered %v after the release, want %v: the first TAU (%v) paged", got.Sub(release), want.Sub(release), p.T3412)
			}
		})
	})
}

func TestEDRXHoldsDownlinkForThePagingWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := slowProfile()
		p.EDRX = true
		l, c, s := dialMem(t, p, 5)
		time.Sleep(30 * time.Second)
		start := time.Now()
		s.Write(make([]byte, 100))
		readAt(t, c, 100, start)
		l.mu.Lock()
		paged := l.radio.connFrom
		window := l.radio.nextPagingOccasion(start.Add(p.RTT / 2))
		l.mu.Unlock()
		if !paged.Equal(window) {
			t.Fatalf("paged at %v, want the paging window's occasion at %v", paged.Sub(start), window.Sub(start))
		}
		if paged.Sub(start) < p.RTT/2 || paged.Sub(start) > p.EDRXCycle {
			t.Fatalf("paged %v after the send; an eDRX wait is between 0 and one cycle", paged.Sub(start))
		}
	})
}

func TestReadDeadlineWhileHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, s := dialMem(t, slowProfile(), 1)
		start := time.Now()
		s.Write([]byte("held"))
		c.SetReadDeadline(start.Add(10 * time.Millisecond))
		buf := make([]byte, 16)
		_, err := c.Read(buf)
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("got %v, want a timeout", err)
		}
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Fatalf("timed out after %v, want 10ms", d)
		}
		c.SetReadDeadline(time.Time{})
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "held" {
			t.Fatalf("read after the timeout: %q, %v", buf[:n], err)
		}
		if d := time.Since(start); d != 50*time.Millisecond+serial(4) {
			t.Fatalf("delivered after %v, want the modelled %v", d, 50*time.Millisecond+serial(4))
		}
	})
}

func TestCloseDeliversQueuedUplink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, s := dialMem(t, slowProfile(), 1)
		msg := bytes.Repeat([]byte("last words "), 500)
		c.Write(msg)
		c.Close()
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("server read %d bytes, %v; want all %d then EOF", len(got), err, len(msg))
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
	})
}

func TestUplinkBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, s := dialMem(t, slowProfile(), 1)
		go io.Copy(io.Discard, s)
		start := time.Now()
		c.Write(make([]byte, maxUpQueue)) // 256 KiB at 10 B/ms: about 27 s in flight
		if d := time.Since(start); d != 0 {
			t.Fatalf("the first write blocked for %v", d)
		}
		c.Write([]byte("x"))
		if d := time.Since(start); d < time.Second {
			t.Fatalf("a write beyond the in-flight bound returned after %v; it should wait for the link", d)
		}
	})
}

func TestOneRecordPerRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, s := dialMem(t, slowProfile(), 1)
		s.Write(slices.Concat(record(22, 100), record(23, 20), record(23, 3)))
		buf := make([]byte, 4096)
		var sizes []int
		for range 3 {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
		if !slices.Equal(sizes, []int{105, 25, 8}) {
			t.Fatalf("reads returned %v bytes, want one record each: [105 25 8]", sizes)
		}
	})
}

func TestNATExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := slowProfile()
		p.NATIdleTimeout = 30 * time.Second
		_, c, s := dialMem(t, p, 1)
		c.Write([]byte("hello"))
		readAt(t, s, 5, time.Now())
		time.Sleep(20 * time.Second)
		if _, err := c.Write([]byte("still here")); err != nil {
			t.Fatalf("write within the NAT timeout: %v", err)
		}
		time.Sleep(31 * time.Second)
		if _, err := c.Write([]byte("too late")); !errors.Is(err, ErrNATExpired) {
			t.Fatalf("write after %v idle: %v, want ErrNATExpired", 31*time.Second, err)
		}
		if _, err := io.ReadAll(s); err != nil {
			t.Fatalf("server end: %v, want EOF", err)
		}
	})
}

func TestLossIsDeterministic(t *testing.T) {
	run := func(seed uint64) (ConnStats, []time.Duration) {
		var st ConnStats
		var times []time.Duration
		synctest.Test(t, func(t *testing.T) {
			p := slowProfile()
			p.Loss = 0.2
			p.UplinkBPS, p.DownlinkBPS = 8_000_000, 8_000_000
			_, c, s := dialMem(t, p, seed)
			msg := bytes.Repeat([]byte{7}, 20000)
			for range 5 {
				start := time.Now()
				c.Write(msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("stream damaged: %v", err)
				}
				times = append(times, time.Since(start))
			}
			st = c.Stats()
		})
		return st, times
	}
	a, ta := run(1)
	b, tb := run(1)
	c, tc := run(2)
	if a != b || !slices.Equal(ta, tb) {
		t.Fatalf("same seed, different runs:\n%+v %v\n%+v %v", a, ta, b, tb)
	}
	if a.Retransmitted[Up] == 0 {
		t.Fatal("20% loss retransmitted nothing")
	}
	if a == c && slices.Equal(ta, tc) {
		t.Fatal("a different seed changed nothing")
	}
	// A loss delays the burst by at least the fast-retransmit time (one RTT).
	if slices.Max(ta) < 100*time.Millisecond+serial(20000) {
		t.Fatalf("delivery times %v show no retransmission delay", ta)
	}
}

func TestLatencyJitterDistribution(t *testing.T) {
	draw := func(rtt, jitter time.Duration) (mean, sd float64, lo time.Duration) {
		p := slowProfile()
		p.RTT, p.RTTJitter = rtt, jitter
		l, err := NewLink(p, LinkOptions{Clock: newFakeClock(), Rand: rand.New(rand.NewPCG(42, 0))})
		if err != nil {
			t.Fatal(err)
		}
		const n = 20000
		var sum, sq float64
		lo = time.Hour
		for range n {
			d := l.oneWay()
			lo = min(lo, d)
			sum += float64(d)
			sq += float64(d) * float64(d)
		}
		mean = sum / n
		return mean, math.Sqrt(sq/n - mean*mean), lo
	}
	t.Run("normal around RTT/2", func(t *testing.T) {
		mean, sd, lo := draw(120*time.Millisecond, 10*time.Millisecond)
		if got := time.Duration(mean); got < 59500*time.Microsecond || got > 60500*time.Microsecond {
			t.Errorf("mean one-way %v, want about RTT/2 = 60ms", got)
		}
		// A round trip is two independent draws: its deviation is the jitter.
		if want := float64(10*time.Millisecond) / math.Sqrt2; sd < 0.97*want || sd > 1.03*want {
			t.Errorf("standard deviation %v, want about %v", time.Duration(sd), time.Duration(want))
		}
		if lo == 60*time.Millisecond {
			t.Error("no jitter at all")
		}
	})
	t.Run("floored at RTT/4", func(t *testing.T) {
		_, _, lo := draw(120*time.Millisecond, 200*time.Millisecond)
		if lo != 30*time.Millisecond {
			t.Errorf("minimum %v, want the floor RTT/4 = 30ms to be hit", lo)
		}
	})
	t.Run("no jitter", func(t *testing.T) {
		_, sd, lo := draw(120*time.Millisecond, 0)
		if sd != 0 || lo != 60*time.Millisecond {
			t.Errorf("sd %v min %v, want a constant 60ms", sd, lo)
		}
	})
}

// TestIdleConnHoldsNoTimer checks that a connection with nothing in flight has
// no timer running and started no goroutine.
func TestIdleConnHoldsNoTimer(t *testing.T) {
	clk := newFakeClock()
	p := slowProfile()
	l, err := NewLink(p, LinkOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	a, b := memnet.Pipe()
	defer b.Close()
	goroutines := runtime.NumGoroutine()
	c := newConn(l, a, ReasonInitial, clk.Now())
	defer c.Close()
	c.Write(make([]byte, 1000))
	c.Write(make([]byte, 1000))
	if n := clk.activeTimers(); n != 1 {
		t.Fatalf("%d timers for two queued writes, want 1", n)
	}
	clk.Advance(serial(1000) + 49*time.Millisecond)
	b.SetReadDeadline(time.Now().Add(-1))
	if n, _ := b.Read(make([]byte, 1)); n != 0 {
		t.Fatal("bytes delivered before their time")
	}
	clk.Advance(time.Millisecond)
	clk.Advance(serial(1000))
	b.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(b, make([]byte, 2000)); err != nil {
		t.Fatal(err)
	}
	if n := clk.activeTimers(); n != 0 {
		t.Fatalf("%d timers still set on an idle connection", n)
	}
	if n := runtime.NumGoroutine(); n != goroutines {
		t.Fatalf("%d goroutines, %d before the connection", n, goroutines)
	}
}

func TestPowerOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, c, s := dialMem(t, slowProfile(), 1)
		l.PowerOff()
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after power-off: %v", err)
		}
		if _, err := io.ReadAll(s); err != nil {
			t.Fatalf("server end: %v, want EOF", err)
		}
		d := &Dialer{Link: l, Transport: func(context.Context, string, string) (net.Conn, error) {
			t.Fatal("dialled a powered-off device")
			return nil, nil
		}}
		if _, err := d.Dial(context.Background(), "tcp", "hub:1"); !errors.Is(err, ErrPoweredOff) {
			t.Fatalf("dial after power-off: %v", err)
		}
		rep := l.Energy()
		if rep.Time(StateOff) != 0 {
			t.Fatalf("off time %v at the moment of power-off", rep.Time(StateOff))
		}
		time.Sleep(time.Hour)
		if got := l.Energy().Time(StateOff); got != time.Hour {
			t.Fatalf("off for %v, want 1h", got)
		}
	})
}
