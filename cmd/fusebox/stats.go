package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("stats", newStatsCmd) }

// statsInterval is how often a streaming `stats` redraws its table: the
// daemon sends one record a second per container.
const statsInterval = time.Second

// clearScreen erases a terminal and moves the cursor home, before each
// redraw of a streaming table on a terminal.
const clearScreen = "\033[2J\033[H"

// errStreamEnded is a container's stats stream ending: the daemon ends it
// when the container is removed.
var errStreamEnded = errors.New("stats stream ended: container removed")

// interruptedBy is the cause of a stats run's end by a signal.
type interruptedBy struct{ syscall.Signal }

func (i interruptedBy) Error() string { return "interrupted by " + i.Signal.String() }

// statsRow is one line of `stats`; --format templates name its fields, the
// placeholders Docker's stats knows.
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

var statsList = formatter.List{
	DefaultTable: `{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}`,
	Headers: map[string]string{
		"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
		"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
	},
}

// statsFigures are the numbers of one stats record, computed as Docker's
// CLI computes them so that both show the same.
type statsFigures struct {
	ID, Name                  string
	CPU                       float64 // percent of one CPU, summed over CPUs
	Mem, MemLimit, MemPercent float64
	NetRx, NetTx              float64
	BlockRead, BlockWrite     float64
	Pids                      uint64
}

// figures computes a record's figures. CPU % is the container's CPU time
// over the host's in the interval between the record and its previous
// sample, times the online CPUs; memory leaves out the page cache that
// can be dropped (cgroup v1 total_inactive_file, v2 inactive_file); NET
// I/O sums the interfaces, BLOCK I/O the devices.
func figures(s *container.StatsResponse) statsFigures {
	f := statsFigures{ID: s.ID, Name: strings.TrimPrefix(s.Name, "/"), Pids: s.PidsStats.Current}
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	cpus := float64(s.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpuDelta > 0 && sysDelta > 0 {
		f.CPU = cpuDelta / sysDelta * cpus * 100
	}
	m := s.MemoryStats
	f.Mem = float64(m.Usage)
	if v, v1 := m.Stats["total_inactive_file"]; v1 && v < m.Usage {
		f.Mem = float64(m.Usage - v)
	} else if v, v2 := m.Stats["inactive_file"]; !v1 && v2 && v < m.Usage {
		f.Mem = float64(m.Usage - v)
	}
	f.MemLimit = float64(m.Limit)
	if m.Limit > 0 {
		f.MemPercent = f.Mem / f.MemLimit * 100
	}
	for _, n := range s.Networks {
		f.NetRx += float64(n.RxBytes)
		f.NetTx += float64(n.TxBytes)
	}
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			f.BlockRead += float64(b.Value)
		case "write":
			f.BlockWrite += float64(b.Value)
		}
	}
	return f
}

// row renders figures as Docker's stats columns: memory in binary units,
// traffic in decimal ones. key is the container as the user named it.
func (f statsFigures) row(key string, noTrunc bool) statsRow {
	id := f.ID
	if !noTrunc {
		id = formatter.ShortID(id)
	}
	name := f.Name
	if name == "" {
		name = "--"
	}
	return statsRow{
		Container: key, ID: id, Name: name,
		CPUPerc:  fmt.Sprintf("%.2f%%", f.CPU),
		MemUsage: units.BytesSize(f.Mem) + " / " + units.BytesSize(f.MemLimit),
		MemPerc:  fmt.Sprintf("%.2f%%", f.MemPercent),
		NetIO:    decimalSize(f.NetRx) + " / " + decimalSize(f.NetTx),
		BlockIO:  decimalSize(f.BlockRead) + " / " + decimalSize(f.BlockWrite),
		PIDs:     fmt.Sprintf("%d", f.Pids),
	}
}

// invalidRow is a container whose stats can't be read (its stream failed
// or ended): Docker shows dashes.
func invalidRow(key, id, name string, noTrunc bool) statsRow {
	if !noTrunc {
		id = formatter.ShortID(id)
	}
	if name == "" {
		name = "--"
	}
	return statsRow{Container: key, ID: id, Name: name, CPUPerc: "--", MemUsage: "-- / --", MemPerc: "--",
		NetIO: "--", BlockIO: "--", PIDs: "--"}
}

func decimalSize(n float64) string { return units.HumanSizeWithPrecision(n, 3) }

// statsFeed is one container's stats, kept up to date from the daemon's
// stream by a goroutine of its own.
type statsFeed struct {
	key    string // as the user named it, or the ID when following all
	cancel context.CancelFunc
	first  chan struct{} // closed at the first record or failure

	mu   sync.Mutex
	cur  statsFigures
	have bool
	err  error
}

func newStatsFeed(ctx context.Context, c *client.Client, key, id, name string, stream bool) *statsFeed {
	ctx, cancel := context.WithCancel(ctx)
	f := &statsFeed{key: key, cancel: cancel, first: make(chan struct{}), cur: statsFigures{ID: id, Name: name}}
	go f.follow(ctx, c, stream)
	return f
}

// follow reads the container's records until the stream ends: one when
// not streaming (the daemon takes two samples for it, for the CPU delta),
// else one a second.
func (f *statsFeed) follow(ctx context.Context, c *client.Client, stream bool) {
	var once sync.Once
	done := func() { once.Do(func() { close(f.first) }) }
	defer done()
	res, err := c.ContainerStats(ctx, f.key, client.ContainerStatsOptions{Stream: stream, IncludePreviousSample: !stream})
	if err != nil {
		f.fail(ctx, err)
		return
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil {
			if errors.Is(err, io.EOF) {
				err = errStreamEnded
			} else {
				err = fmt.Errorf("decode stats: %w", err)
			}
			f.fail(ctx, err)
			return
		}
		fig := figures(&s)
		f.mu.Lock()
		f.cur, f.have = fig, true
		f.mu.Unlock()
		done()
		if !stream {
			return
		}
	}
}

func (f *statsFeed) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // stopped by us
	}
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *statsFeed) state() (statsFigures, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur, f.have, f.err
}

// statsFeeds are the containers shown, in the order they were added.
type statsFeeds struct {
	list []*statsFeed
	byID map[string]*statsFeed
}

func newStatsCmd() *cobra.Command {
	var (
		all, noStream, noTrunc bool
		format                 string
	)
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		Long: `Display a live stream of container(s) resource usage statistics.

Without CONTAINER it follows the running containers (all of them with -a):
it lists them again before each redraw, so that those that start appear and
those that stop (without -a) or are removed disappear.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialFormatted(cmd, format)
			if err != nil {
				return err
			}
			defer c.Close()
			// Ctrl-C (or SIGTERM) ends the stream, which is how a stream is
			// meant to stop: no error is printed, and the status is
			// 128+signal, 130 for Ctrl-C, as docker's stats (28.x) exits.
			ctx, cancel := context.WithCancelCause(cmd.Context())
			defer cancel(nil)
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				select {
				case sig := <-sigs:
					cancel(interruptedBy{sig.(syscall.Signal)})
				case <-ctx.Done():
				}
			}()
			out := cmd.OutOrStdout()
			tty := false
			if f, ok := out.(*os.File); ok && !noStream {
				tty = term.IsTerminal(int(f.Fd()))
			}
			s := &statsRun{c: c, all: all, names: args, stream: !noStream, noTrunc: noTrunc, format: format, out: out, tty: tty}
			err = s.run(ctx)
			if sig, ok := context.Cause(ctx).(interruptedBy); ok {
				return &statusError{code: 128 + int(sig.Signal)}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)")
	fl.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// statsRun is one `stats` invocation.
type statsRun struct {
	c                    *client.Client
	all, stream, noTrunc bool
	names                []string
	format               string
	out                  io.Writer
	tty                  bool
	feeds                statsFeeds
}

func (s *statsRun) run(ctx context.Context) error {
	s.feeds.byID = map[string]*statsFeed{}
	defer func() {
		for _, f := range s.feeds.list {
			f.cancel()
		}
	}()
	following := len(s.names) == 0
	if following {
		if err := s.refresh(ctx); err != nil {
			return s.interrupted(ctx, err)
		}
	} else {
		for _, n := range s.names {
			if _, dup := s.feeds.byID[n]; dup {
				continue
			}
			f := newStatsFeed(ctx, s.c, n, "", "", s.stream)
			s.feeds.byID[n] = f
			s.feeds.list = append(s.feeds.list, f)
		}
	}
	// The first table waits for every container's first record; a name
	// that isn't a container is an error here, before any table.
	var errs []string
	for _, f := range s.feeds.list {
		select {
		case <-f.first:
		case <-ctx.Done():
			return nil
		}
		if _, _, err := f.state(); err != nil && !following {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		if err := s.draw(following); err != nil {
			return err
		}
		if !s.stream {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
		if following {
			if err := s.refresh(ctx); err != nil {
				return s.interrupted(ctx, err)
			}
		}
	}
}

// interrupted is nil for an error that only comes from the interrupt.
func (s *statsRun) interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// refresh lists the containers to follow and starts and stops feeds to
// match: polling the list each redraw stands in for Docker's event watch,
// and costs one request a second.
func (s *statsRun) refresh(ctx context.Context) error {
	res, err := s.c.ContainerList(ctx, client.ContainerListOptions{All: s.all})
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, it := range res.Items {
		live[it.ID] = true
		if _, ok := s.feeds.byID[it.ID]; ok {
			continue
		}
		name := ""
		if len(it.Names) > 0 {
			name = strings.TrimPrefix(it.Names[0], "/")
		}
		f := newStatsFeed(ctx, s.c, it.ID, it.ID, name, s.stream)
		s.feeds.byID[it.ID] = f
		s.feeds.list = append(s.feeds.list, f)
	}
	kept := s.feeds.list[:0]
	for _, f := range s.feeds.list {
		if live[f.key] {
			kept = append(kept, f)
			continue
		}
		f.cancel()
		delete(s.feeds.byID, f.key)
	}
	s.feeds.list = kept
	return nil
}

// draw writes one table, in one write so that a terminal doesn't show it
// half drawn.
func (s *statsRun) draw(following bool) error {
	rows := make([]any, 0, len(s.feeds.list))
	for _, f := range s.feeds.list {
		fig, have, err := f.state()
		key := f.key
		if following {
			key = formatter.ShortID(key)
		}
		switch {
		case err != nil && following:
			// Gone between two lists: the next one drops it.
			continue
		case err != nil:
			rows = append(rows, invalidRow(key, fig.ID, fig.Name, s.noTrunc))
		case !have:
			if following && !s.stream {
				continue
			}
			rows = append(rows, fig.row(key, s.noTrunc))
		default:
			rows = append(rows, fig.row(key, s.noTrunc))
		}
	}
	var buf bytes.Buffer
	if s.tty {
		buf.WriteString(clearScreen)
	}
	l := statsList
	l.Format = s.format
	if err := l.Write(&buf, rows); err != nil {
		return err
	}
	_, err := s.out.Write(buf.Bytes())
	return err
}
