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
		bar.Abort(false)
		p.Wait()
	}
}

// printStream shows a daemon's JSON message stream (load, import) as
// Docker's CLI does without a TTY: stream text as it is, status lines with
// their id; an error message in the stream becomes the command's error.
func printStream(r io.Reader, out io.Writer, quiet bool) error {
	dec := json.NewDecoder(r)
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
		switch {
		case m.Stream != "":
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
