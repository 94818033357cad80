package daemon

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodGet, "/events", d.eventsHandler)
	})
}

// eventBacklog is how many past events /events can replay for --since.
const eventBacklog = 1024

// eventBus fans events out to /events streams and keeps the last ones for
// streams that ask for the past.
type eventBus struct {
	mu   sync.Mutex
	past []events.Message
	subs map[chan events.Message]struct{}
}

func newEventBus() *eventBus { return &eventBus{subs: map[chan events.Message]struct{}{}} }

func (b *eventBus) publish(m events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.past = append(b.past, m)
	if len(b.past) > eventBacklog {
		b.past = b.past[len(b.past)-eventBacklog:]
	}
	for ch := range b.subs {
		select {
		case ch <- m:
		default: // a reader that can't keep up loses events rather than stalling the daemon
		}
	}
}

// subscribe returns the backlog and a channel of the events after it.
func (b *eventBus) subscribe() ([]events.Message, chan events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan events.Message, 256)
	b.subs[ch] = struct{}{}
	return append([]events.Message(nil), b.past...), ch
}

func (b *eventBus) unsubscribe(ch chan events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, ch)
}

// Emit publishes an event on /events: typ is "container" or "image",
// action what happened ("create", "start", "die", "pull", "tag", ...), id
// the object's ID and attrs its attributes (name, image, exitCode, labels).
func (d *Daemon) Emit(typ events.Type, action events.Action, id string, attrs map[string]string) {
	if d.containers == nil {
		return
	}
	now := time.Now()
	if attrs == nil {
		attrs = map[string]string{}
	}
	d.containers.events.publish(events.Message{
		Type: typ, Action: action, Scope: "local",
		Actor: events.Actor{ID: id, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// emitContainer publishes a container event with Docker's attributes:
// the container's labels, its image and its name.
func (d *Daemon) emitContainer(c *ctr, action events.Action, extra map[string]string) {
	r := c.snapshot()
	attrs := map[string]string{"name": r.Name, "image": r.Config.Image}
	for k, v := range r.Config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	d.Emit(events.ContainerEventType, action, r.ID, attrs)
}

// parseEventTime reads a --since/--until value as the CLI sends it: Unix
// seconds with an optional fraction.
func parseEventTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		if t, err2 := time.Parse(time.RFC3339Nano, s); err2 == nil {
			return t, nil
		}
		return time.Time{}, BadParameterf("invalid timestamp %q", s)
	}
	var ns int64
	if frac != "" {
		for len(frac) < 9 {
			frac += "0"
		}
		if ns, err = strconv.ParseInt(frac[:9], 10, 64); err != nil {
			return time.Time{}, BadParameterf("invalid timestamp %q", s)
		}
	}
	return time.Unix(n, ns), nil
}

// eventFilter is /events' filters: type, event, container, image, label.
type eventFilter map[string][]string

func (f eventFilter) match(m events.Message) bool {
	for k, vs := range f {
		ok := false
		for _, v := range vs {
			switch k {
			case "type":
				ok = ok || string(m.Type) == v
			case "event", "action":
				ok = ok || string(m.Action) == v || strings.HasPrefix(string(m.Action), v+":")
			case "container":
				ok = ok || (m.Type == events.ContainerEventType && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v))
			case "image":
				ok = ok || m.Actor.Attributes["image"] == v || m.Actor.ID == v || m.Actor.Attributes["name"] == v
			case "label":
				lk, lv, hasV := strings.Cut(v, "=")
				got, present := m.Actor.Attributes[lk]
				ok = ok || (present && (!hasV || got == lv))
			default:
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func parseFilterArgs(raw string) (map[string][]string, error) {
	out := map[string][]string{}
	if raw == "" {
		return out, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		var old map[string][]string
		if err2 := json.Unmarshal([]byte(raw), &old); err2 != nil {
			return nil, BadParameterf("invalid filter: %v", err)
		}
		return old, nil
	}
	for k, vs := range m {
		for v := range vs {
			out[k] = append(out[k], v)
		}
	}
	return out, nil
}

func (d *Daemon) eventsHandler(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since, err := parseEventTime(q.Get("since"))
	if err != nil {
		return err
	}
	until, err := parseEventTime(q.Get("until"))
	if err != nil {
		return err
	}
	fa, err := parseFilterArgs(q.Get("filters"))
	if err != nil {
		return err
	}
	filter := eventFilter(fa)
	past, ch := d.containers.events.subscribe()
	defer d.containers.events.unsubscribe(ch)

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	enc := json.NewEncoder(w)
	in := func(m events.Message) bool {
		t := time.Unix(0, m.TimeNano)
		return (since.IsZero() || !t.Before(since)) && (until.IsZero() || !t.After(until))
	}
	if !since.IsZero() {
		for _, m := range past {
			if in(m) && filter.match(m) {
				if err := enc.Encode(m); err != nil {
					return nil
				}
			}
		}
		flush()
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		wait := time.Until(until)
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-deadline:
			return nil
		case m := <-ch:
			if in(m) && filter.match(m) {
				if err := enc.Encode(m); err != nil {
					return nil
				}
				flush()
			}
		}
	}
}
