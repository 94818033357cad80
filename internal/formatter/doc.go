// Package formatter prints lists the way Docker's CLI does: a table whose
// columns are padded with three spaces (text/tabwriter), or one line per row
// from a --format Go template with Docker's template functions (json, join,
// upper, lower, title, split, truncate, pad, println). A format that starts
// with "table" keeps the table layout with the columns the template names;
// the header row is the same template executed over the column titles, as
// Docker does it, so custom columns get their proper headers.
//
// It also holds the small renderings every list shares: 12-character IDs,
// human sizes with three significant digits ("4.27MB") and "2 days ago".
package formatter
