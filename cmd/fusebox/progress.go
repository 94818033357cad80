package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progressThreshold is the archive size from which load and import draw a
// progress bar; smaller ones finish before a bar would be read.
const progressThreshold = 16 << 20

// withProgress wraps r, size bytes long, in a progress bar on stderr when
// stderr is a terminal and the archive is big; done stops the bar.
func withProgress(r io.Reader, size int64, label string) (wrapped io.Reader, done func()) {
	if size < progressThreshold || !term.IsTerminal(int(os.Stderr.Fd())) {
		return r, func() {}
	}
	p := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
	bar := p.AddBar(size,
		mpb.PrependDecorators(decor.Name(label, decor.WC{C: decor.DindentRight | decor.DextraSpace})),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f"),
			decor.Name(" "),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f"),
		),
	)
	pr, err := bar.ProxyReader(r)
	if err != nil {
		return r, func() {}
	}
	return pr, func() {
		// Complete the bar at what was sent (the daemon may have stopped
		// reading early on an error) so that its last state is drawn.
		bar.SetTotal(-1, true)
		p.Wait()
	}
}

// layerBars draws the daemon's per-layer progress messages ("Loading
// layer", with current and total bytes) as bars on a terminal.
type layerBars struct {
	p    *mpb.Progress
	bars map[string]*mpb.Bar
}

func newLayerBars() *layerBars {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return &layerBars{p: mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40)), bars: map[string]*mpb.Bar{}}
}

func (l *layerBars) update(m jsonstream.Message) {
	if m.Progress.Total < progressThreshold && l.bars[m.ID] == nil {
		return
	}
	b := l.bars[m.ID]
	if b == nil {
		b = l.p.AddBar(m.Progress.Total,
			mpb.PrependDecorators(decor.Name(m.ID+": "+m.Status, decor.WC{C: decor.DindentRight | decor.DextraSpace})),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")))
		l.bars[m.ID] = b
	}
	b.SetCurrent(m.Progress.Current)
}

func (l *layerBars) finish() {
	for _, b := range l.bars {
		b.SetTotal(-1, true)
	}
	l.p.Wait()
}

// printStream shows a daemon's JSON message stream (load, import) as
// Docker's CLI does: stream text as it is, status lines with their id,
// progress as bars on a terminal (big layers only); an error message in
// the stream becomes the command's error.
func printStream(r io.Reader, out io.Writer, quiet bool) error {
	return readStream(r, out, quiet, nil)
}

// readStream is printStream that also hands each message's aux data (an
// image ID, a push digest) to onAux when it is not nil.
func readStream(r io.Reader, out io.Writer, quiet bool, onAux func(json.RawMessage)) error {
	dec := json.NewDecoder(r)
	bars := newLayerBars()
	defer func() {
		if bars != nil {
			bars.finish()
		}
	}()
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read daemon response: %w", err)
		}
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
		if m.Aux != nil && onAux != nil {
			onAux(*m.Aux)
		}
		switch {
		case m.Progress != nil && bars != nil && !quiet:
			bars.update(m)
		case m.Stream != "":
			if bars != nil {
				// Done with progress: draw the bars' last state before
				// the result lines.
				bars.finish()
				bars = nil
			}
			fmt.Fprint(out, m.Stream)
		case m.Status != "" && m.Progress == nil && !quiet:
			if m.ID != "" {
				fmt.Fprintf(out, "%s: %s\n", m.ID, m.Status)
			} else {
				fmt.Fprintln(out, strings.TrimRight(m.Status, "\n"))
			}
		}
	}
}
