package fleet

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/scenarios"
)

// drive runs the cloud-side drivers: C2D messages, direct methods and desired
// updates, each a Poisson process at the driver's rate per targeted device.
// Each shard drives only its own devices, so shards add up to the whole fleet.
func (f *fleet) drive(ctx context.Context, started time.Time) {
	if f.target.cloud == nil {
		return
	}
	c := f.plan.Cloud
	rnd := rand.New(rand.NewPCG(f.plan.Seed, 0xc10d))
	type driver struct {
		rate    float64 // per device per second
		targets []*device
		act     func(context.Context, *device)
	}
	var ds []driver
	if c.C2D != nil {
		ds = append(ds, driver{c.C2D.Rate.PerSecond(), f.devicesIn(c.C2DGroups), func(ctx context.Context, d *device) { f.sendC2D(ctx, d, c.C2D, rnd) }})
	}
	if c.Methods != nil {
		ds = append(ds, driver{c.Methods.Rate.PerSecond(), f.devicesIn(c.MethodGroups), func(ctx context.Context, d *device) { f.invoke(ctx, d, c.Methods) }})
	}
	if c.Desired != nil {
		ds = append(ds, driver{c.Desired.Rate.PerSecond(), f.devicesIn(c.DesiredGroups), func(ctx context.Context, d *device) { f.desire(ctx, d, c.Desired) }})
	}
	done := make(chan struct{}, len(ds))
	for i, dr := range ds {
		if dr.rate <= 0 || len(dr.targets) == 0 {
			done <- struct{}{}
			continue
		}
		r := rand.New(rand.NewPCG(f.plan.Seed, uint64(i)+1))
		total := dr.rate * float64(len(dr.targets))
		go func() {
			defer func() { done <- struct{}{} }()
			next := started
			for {
				next = next.Add(time.Duration(r.ExpFloat64() / total * float64(time.Second)))
				if !sleepUntil(ctx, next) {
					return
				}
				d := dr.targets[r.IntN(len(dr.targets))]
				// Calls to a device that is not connected are counted as the
				// service sees them: C2D waits in the queue, methods fail.
				dr.act(ctx, d)
			}
		}()
	}
	for range ds {
		<-done
	}
}

func (f *fleet) devicesIn(groups []string) []*device {
	var out []*device
	for _, g := range groups {
		out = append(out, f.byGroup[g]...)
	}
	return out
}

func (f *fleet) sendC2D(ctx context.Context, d *device, c *scenarios.C2DDriver, rnd *rand.Rand) {
	f.mu.Lock()
	f.c2dSeq++
	id := "c2d-" + strconv.FormatUint(f.c2dSeq, 10)
	body := make([]byte, c.Size)
	for i := range body {
		body[i] = byte('a' + rnd.IntN(26))
	}
	f.c2dSent[id] = time.Now()
	f.mu.Unlock()
	err := f.target.cloud.sendC2D(ctx, d.plan.ID, iothub.Message{MessageID: id, Body: body}, c.Ack, c.TTL.D())
	if err != nil {
		f.c2dTaken(id)
		d.m.Error("c2d_send_"+kindOfHubError(err), err)
		return
	}
	d.m.Add(metrics.C2DSent, 1)
}

// c2dTaken returns when a C2D message was sent and forgets it.
func (f *fleet) c2dTaken(id string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.c2dSent[id]
	delete(f.c2dSent, id)
	return t, ok
}

func (f *fleet) invoke(ctx context.Context, d *device, m *scenarios.MethodDriver) {
	d.m.Add(metrics.MethodCalls, 1)
	t0 := time.Now()
	status, err := f.target.cloud.invokeMethod(ctx, d.plan.ID, m.Name, []byte(m.Payload), m.Timeout.D())
	if err != nil {
		if ctx.Err() == nil {
			d.m.Add(metrics.MethodFailures, 1)
			d.m.Error("method_"+kindOfHubError(err), err)
		}
		return
	}
	_ = status
	d.m.Observe(metrics.LatencyMethod, time.Since(t0))
}

func (f *fleet) desire(ctx context.Context, d *device, dd *scenarios.DesiredDriver) {
	if err := f.target.cloud.updateDesired(ctx, d.plan.ID, dd.Patch); err != nil {
		d.m.Error("desired_"+kindOfHubError(err), err)
	}
}

// kindOfHubError names a cloud-side error by the device-side kind it maps to.
func kindOfHubError(err error) string {
	var he *iothub.Error
	if errors.As(err, &he) {
		return slug(protocols.KindOf(he.Code))
	}
	return errKind(err)
}
