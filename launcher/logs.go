package launcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// LogEntry is one line of a json-file log: Docker's format, one JSON object
// per line, {"log":"text\n","stream":"stdout","time":"RFC3339Nano"}.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Bytes is the entry as `docker logs` prints it: the text, prefixed with
// its RFC3339Nano timestamp and a space when timestamps is set.
func (e LogEntry) Bytes(timestamps bool) []byte {
	if !timestamps {
		return []byte(e.Log)
	}
	return []byte(e.Time.UTC().Format(time.RFC3339Nano) + " " + e.Log)
}

// maxLogLine is where a line without a newline is cut into entries, as
// Docker cuts at its 16 KiB buffer.
const maxLogLine = 16 * 1024

// logFile writes entries to a json-file log. Each stream keeps its own
// partial line so stdout and stderr never mix within an entry.
type logFile struct {
	mu  sync.Mutex
	f   *os.File
	enc *json.Encoder
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	return &logFile{f: f, enc: json.NewEncoder(f)}, nil
}

func (l *logFile) write(stream string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Encoder.Encode appends the newline that ends the record. A failed
	// log write must not stop the container, so the error is dropped.
	_ = l.enc.Encode(LogEntry{Log: string(line), Stream: stream, Time: time.Now().UTC()})
}

func (l *logFile) Close() error { return l.f.Close() }

var _ io.Writer = (*logStream)(nil)

// logStream is an io.Writer that cuts what it gets into lines for one
// stream of a logFile.
type logStream struct {
	log     *logFile
	stream  string
	partial []byte
}

func (s *logStream) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			for len(s.partial) >= maxLogLine {
				s.log.write(s.stream, s.partial[:maxLogLine])
				s.partial = append(s.partial[:0], s.partial[maxLogLine:]...)
			}
			break
		}
		line := append(s.partial, p[:i+1]...)
		s.log.write(s.stream, line)
		s.partial = s.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush writes a last line that had no newline.
func (s *logStream) flush() {
	if len(s.partial) > 0 {
		s.log.write(s.stream, s.partial)
		s.partial = s.partial[:0]
	}
}

// LogOptions select what ReadLogs returns, as `docker logs` flags do.
type LogOptions struct {
	// Tail is how many of the last entries to return; negative means all.
	Tail int
	// Since and Until bound the entries' times; zero means unbounded.
	Since, Until time.Time
	// Follow keeps reading as the log grows, until ctx is done or Done is
	// closed (then what is in the file is still returned).
	Follow bool
	// Done, when closed, ends a Follow after the rest of the file is read;
	// the daemon closes it when the container has exited.
	Done <-chan struct{}
}

// followPoll is how often a following reader looks for new entries.
const followPoll = 100 * time.Millisecond

// ReadLogs calls fn for each entry of the json-file log at path that opts
// selects, oldest first. A log that doesn't exist yet is empty. It returns
// fn's first error, or ctx's when ctx ends a Follow.
func ReadLogs(ctx context.Context, path string, opts LogOptions, fn func(LogEntry) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !opts.Follow {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	keep := func(e LogEntry) bool {
		return (opts.Since.IsZero() || !e.Time.Before(opts.Since)) &&
			(opts.Until.IsZero() || !e.Time.After(opts.Until))
	}
	// The backlog: with a tail, keep only the last entries in a ring.
	var ring []LogEntry
	var partial []byte
	readAll := func(emit func(LogEntry) error) error {
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				if line[len(line)-1] != '\n' {
					// A record still being written: keep it for next time.
					partial = append(partial, line...)
					return nil
				}
				if len(partial) > 0 {
					line = append(partial, line...)
					partial = nil
				}
				var e LogEntry
				if jerr := json.Unmarshal(line, &e); jerr != nil {
					return fmt.Errorf("parse container log: %w", jerr)
				}
				if keep(e) {
					if err := emit(e); err != nil {
						return err
					}
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read container log: %w", err)
			}
		}
	}
	err = readAll(func(e LogEntry) error {
		if opts.Tail == 0 {
			return nil
		}
		ring = append(ring, e)
		if opts.Tail > 0 && len(ring) > opts.Tail {
			ring = ring[1:]
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range ring {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-opts.Done:
			return readAll(fn)
		case <-t.C:
			if err := readAll(fn); err != nil {
				return err
			}
		}
	}
}
