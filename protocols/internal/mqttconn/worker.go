package mqttconn

import "sync"

// Worker runs a client's handlers one at a time, in order, on one goroutine it
// owns, so that user code never runs on paho's goroutines (where a handler
// that publishes and waits would stall the connection) and nothing a handler
// started outlives the client.
type Worker struct {
	q    chan func()
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// NewWorker starts a worker whose queue holds depth jobs; Do blocks while it
// is full, which slows the connection's reader as a busy device would.
func NewWorker(depth int) *Worker {
	w := &Worker{q: make(chan func(), depth), done: make(chan struct{})}
	w.wg.Add(1)
	go w.run()
	return w
}

func (w *Worker) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.done:
			return
		default:
		}
		select {
		case f := <-w.q:
			f()
		case <-w.done:
			return
		}
	}
}

// Do queues f and reports whether it was queued; after Stop nothing is.
func (w *Worker) Do(f func()) bool {
	select {
	case <-w.done:
		return false
	default:
	}
	select {
	case w.q <- f:
		return true
	case <-w.done:
		return false
	}
}

// Stop ends the worker after the job it is running, dropping queued jobs, and
// waits for it. It must not be called from a job.
func (w *Worker) Stop() {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
}
