package layerfs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/fusebox/fusebox/cas"
)

// benchSource is an in-memory layer: a directory of 1000 files, one
// inline file and, if dir is set, one file opened from disk.
type benchSource struct {
	entries []cas.Entry
	big     string
}

func (s *benchSource) ID() string { return "bench" }
func (s *benchSource) Entries(ctx context.Context) ([]cas.Entry, error) {
	return append([]cas.Entry(nil), s.entries...), nil
}
func (s *benchSource) Open(ctx context.Context, e *cas.Entry) (Content, error) {
	return Content{Data: []byte(strings.Repeat("x", int(e.Size)))}, nil
}

// benchFS serves a merged view through go-fuse's protocol layer, without
// the kernel: the raw requests the kernel would send.
func benchFS(b *testing.B) (fuse.RawFileSystem, uint64, uint64) {
	src := &benchSource{entries: []cas.Entry{
		{Path: ".", Type: cas.TypeDir, Mode: 0755},
		{Path: "usr", Type: cas.TypeDir, Mode: 0755},
		{Path: "small", Type: cas.TypeRegular, Mode: 0644, Size: 100, Inline: true},
	}}
	for i := 0; i < 1000; i++ {
		src.entries = append(src.entries, cas.Entry{Path: fmt.Sprintf("usr/f%04d", i), Type: cas.TypeRegular, Mode: 0644, Size: 10})
	}
	ForgetChain([]Source{src})
	_, root, err := newFS(context.Background(), MountOptions{Lowers: []Source{src}})
	if err != nil {
		b.Fatal(err)
	}
	raw := fs.NewNodeFS(root, &fs.Options{})
	var out fuse.EntryOut
	if st := raw.Lookup(nil, &fuse.InHeader{NodeId: 1}, "usr", &out); !st.Ok() {
		b.Fatal(st)
	}
	usr := out.NodeId
	if st := raw.Lookup(nil, &fuse.InHeader{NodeId: 1}, "small", &out); !st.Ok() {
		b.Fatal(st)
	}
	return raw, usr, out.NodeId
}

func BenchmarkLookup(b *testing.B) {
	raw, usr, _ := benchFS(b)
	var out fuse.EntryOut
	h := &fuse.InHeader{NodeId: usr}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st := raw.Lookup(nil, h, "f0500", &out); !st.Ok() {
			b.Fatal(st)
		}
	}
}

func BenchmarkGetattr(b *testing.B) {
	raw, _, small := benchFS(b)
	in := &fuse.GetAttrIn{InHeader: fuse.InHeader{NodeId: small}}
	var out fuse.AttrOut
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st := raw.GetAttr(nil, in, &out); !st.Ok() {
			b.Fatal(st)
		}
	}
}

func BenchmarkReaddirPlus1000(b *testing.B) {
	raw, usr, _ := benchFS(b)
	buf := make([]byte, 512<<10) // room for all 1000 entries in one request
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var oo fuse.OpenOut
		if st := raw.OpenDir(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: usr}}, &oo); !st.Ok() {
			b.Fatal(st)
		}
		l := fuse.NewDirEntryList(buf, 0)
		in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: usr}, Fh: oo.Fh, Size: uint32(len(buf))}
		if st := raw.ReadDirPlus(nil, in, l); !st.Ok() {
			b.Fatal(st)
		}
		if len(l.Bytes()) < 1000*100 {
			b.Fatalf("readdirplus returned %d bytes for 1000 entries", len(l.Bytes()))
		}
		raw.ReleaseDir(&fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: usr}, Fh: oo.Fh})
	}
}

func BenchmarkReadInline(b *testing.B) {
	raw, _, small := benchFS(b)
	var oo fuse.OpenOut
	if st := raw.Open(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: small}}, &oo); !st.Ok() {
		b.Fatal(st)
	}
	in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: small}, Fh: oo.Fh, Size: 4096}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, st := raw.Read(nil, in, buf)
		if !st.Ok() {
			b.Fatal(st)
		}
		if _, st := res.Bytes(buf); !st.Ok() {
			b.Fatal(st)
		}
	}
}
