package registry

import (
	"sync"
	"time"
)

// Event is one line of Docker's pull or push progress: Status is Docker's
// text ("Pulling fs layer", "Downloading", "Pushed", "Digest: sha256:…"),
// ID the layer's short ID or the tag it is about ("" for lines of their
// own), and Current/Total the bytes done of a transfer (Total 0: none).
type Event struct {
	ID      string
	Status  string
	Current int64
	Total   int64
}

// Reporter receives events; it may be called from several goroutines at
// once (layers transfer concurrently), and must not block for long.
type Reporter func(Event)

// sync returns a reporter safe for concurrent use; nil reports nothing.
func (r Reporter) sync() Reporter {
	if r == nil {
		return func(Event) {}
	}
	var mu sync.Mutex
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		r(e)
	}
}

// throttle reports at most every 100ms, for byte counters.
func throttle(report Reporter, id, status string, total int64) func(int64) {
	var last time.Time
	return func(n int64) {
		if time.Since(last) < 100*time.Millisecond && n < total {
			return
		}
		last = time.Now()
		report(Event{ID: id, Status: status, Current: n, Total: total})
	}
}

// shortID is Docker's 12-character ID of a digest.
func shortID(d interface{ Encoded() string }) string {
	h := d.Encoded()
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
