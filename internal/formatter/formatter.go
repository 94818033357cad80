package formatter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	units "github.com/docker/go-units"
)

// Format names understood besides templates.
const (
	TableFormat = "table"
	RawFormat   = "raw"
	JSONFormat  = "json"
)

// Funcs are Docker's template functions.
var Funcs = template.FuncMap{
	"json": func(v any) string {
		b := &bytes.Buffer{}
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(b.String())
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    title,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      pad,
	"truncate": truncate,
	"println":  fmt.Sprintln,
}

func title(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

func pad(s string, left, right int) string {
	return strings.Repeat(" ", left) + s + strings.Repeat(" ", right)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// Parse compiles a --format template with Docker's functions.
func Parse(format string) (*template.Template, error) {
	t, err := template.New("").Funcs(Funcs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// IsTable reports whether format asks for the table layout.
func IsTable(format string) bool { return strings.HasPrefix(format, TableFormat) }

// List describes one listing: its default table columns and the title of
// each field a template may name.
type List struct {
	// Format is the user's --format ("" means the default table).
	Format string
	// DefaultTable is the template used for "" and "table", without the
	// "table " prefix, columns separated by \t: "{{.Repository}}\t{{.Tag}}".
	DefaultTable string
	// Headers maps field names to column titles ("ID" → "IMAGE ID").
	Headers map[string]string
	// Quiet prints only QuietField of each row, one per line.
	Quiet      bool
	QuietField string
}

// Write renders rows (structs or maps whose fields the templates name) to w.
func (l List) Write(w io.Writer, rows []any) error {
	format := l.Format
	switch {
	case l.Quiet:
		format = "{{." + l.QuietField + "}}"
	case format == "" || format == TableFormat:
		format = TableFormat + " " + l.DefaultTable
	case format == JSONFormat:
		format = "{{json .}}"
	}
	table := IsTable(format)
	if table {
		format = strings.TrimSpace(strings.TrimPrefix(format, TableFormat))
		format = strings.ReplaceAll(format, `\t`, "\t")
	}
	tmpl, err := Parse(format + "\n")
	if err != nil {
		return err
	}
	if !table {
		for _, row := range rows {
			if err := tmpl.Execute(w, row); err != nil {
				return fmt.Errorf("template: %w", err)
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	headers := map[string]string{}
	for k, v := range l.Headers {
		headers[k] = v
	}
	if err := tmpl.Execute(tw, headers); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	for _, row := range rows {
		if err := tmpl.Execute(tw, row); err != nil {
			return fmt.Errorf("template: %w", err)
		}
	}
	return tw.Flush()
}

// Execute renders one value with a --format template (for inspect, version,
// info); "json" prints it as JSON.
func Execute(w io.Writer, format string, v any) error {
	if format == JSONFormat {
		format = "{{json .}}"
	}
	tmpl, err := Parse(format)
	if err != nil {
		return err
	}
	if err := tmpl.Execute(w, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// ShortID is an image or container ID as Docker lists it: 12 hex characters
// without the algorithm prefix.
func ShortID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	return truncate(id, 12)
}

// Size is a byte count as Docker shows it: decimal units, three
// significant digits ("4.27MB", "1.2GB", "0B").
func Size(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

// Ago is how long ago t was, as Docker shows it ("2 days ago").
func Ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}
