package bench

// The layerfs hot-path micro-benchmarks (issue 3, "Go benchmarks in bench/
// for the hot path without the kernel"): each request goes to
// layerfs.NewRawFS, the file system a mount would serve, as the kernel
// would send it, with no FUSE mount and no kernel round trip. They run on
// a tiny data set's layers (busybox base, a tree of small files, a big
// file, a layer of changes with whiteouts, a top layer) served two ways:
//
//	cas  the layers loaded into a real cas.Store (CASSource; small files
//	     inline in Badger, the rest in object files)
//	dir  the layers as overlayfs directories (DirSource)
//
//	BenchmarkLookup      one path component in a 50-entry lower directory, hit and miss
//	BenchmarkGetattr     a lower regular file and a lower directory
//	BenchmarkReaddir     READDIRPLUS of a 50-entry lower directory, open to release
//	BenchmarkReadInline  4 KiB reads of a small file (inline in the store)
//	BenchmarkReadObject  1 MiB reads of the big file's object file (pread, no passthrough here)
//	BenchmarkOpenSmall   OPEN and RELEASE of a small tree file ("warm": what a read
//	                     costs once the kernel caches its pages), and OPEN, one
//	                     READ, RELEASE ("cold")
//	BenchmarkCreate      the requests one file of "create 10,000 small files" costs
//	                     on a writable union: LOOKUP (no such name), CREATE,
//	                     GETXATTR security.capability, the 512 B write, RELEASE,
//	                     GETATTR of the directory
//
// Compare runs with benchstat:
//
//	go test -run '^$' -bench 'Lookup|Getattr|Readdir|ReadInline|ReadObject' -benchmem -count 10 ./bench/ > new.txt
//	benchstat old.txt new.txt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
)

// rawSet is the data set served both ways.
type rawSet struct {
	ds     *Dataset
	inline string // a small file of the tree the store keeps inline
	fss    []namedRaw
	chains []namedChain
}

type namedChain struct {
	name  string
	chain []layerfs.Source
}

type namedRaw struct {
	name string
	fs   *layerfs.RawFS
}

// rawFileSystems builds the tiny data set, loads its layers into a store
// and returns the union served from the store and from the directories.
func rawFileSystems(b *testing.B) *rawSet {
	b.Helper()
	ds := benchLayers(b)
	ctx := context.Background()
	st, err := cas.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	lease := st.NewLease()
	b.Cleanup(func() {
		lease.Release(ctx)
		st.Close()
	})
	layers := layerfs.NewCASLayers(st, nil)
	var casChain, dirChain []layerfs.Source
	tmp := b.TempDir()
	for i, dir := range ds.Layers { // top first
		tarPath := filepath.Join(tmp, fmt.Sprintf("%d.tar", i))
		if _, err := writeLayerTar(ctx, dir, tarPath); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(tarPath)
		if err != nil {
			b.Fatal(err)
		}
		info, err := st.IngestLayer(ctx, f, cas.IngestOptions{Lease: lease})
		f.Close()
		if err != nil {
			b.Fatalf("ingest %s: %v", dir, err)
		}
		casChain = append(casChain, layers.Layer(info.DiffID))
		src, err := layerfs.NewDirSource(dir)
		if err != nil {
			b.Fatal(err)
		}
		dirChain = append(dirChain, src)
	}
	set := &rawSet{ds: ds}
	for _, c := range []struct {
		name  string
		chain []layerfs.Source
	}{{"cas", casChain}, {"dir", dirChain}} {
		fs, err := layerfs.NewRawFS(ctx, layerfs.MountOptions{Lowers: c.chain})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { layerfs.ForgetChain(c.chain) })
		set.fss = append(set.fss, namedRaw{c.name, fs})
		set.chains = append(set.chains, namedChain{c.name, c.chain})
	}
	// A tree file small enough to be inline in the store.
	ents, err := os.ReadDir(filepath.Join(ds.Dir, "layers/1-tree", path.Dir(ds.SmallFile)))
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.Size() <= cas.DefaultInlineThreshold {
			set.inline = path.Join(path.Dir(ds.SmallFile), e.Name())
			break
		}
	}
	if set.inline == "" {
		b.Fatal("no small file in the tree")
	}
	return set
}

// each runs fn as a sub-benchmark per source kind.
func (s *rawSet) each(b *testing.B, fn func(b *testing.B, fs *layerfs.RawFS)) {
	for _, r := range s.fss {
		b.Run(r.name, func(b *testing.B) { fn(b, r.fs) })
	}
}

// lookup walks p from the root and returns the node ID and attributes.
func lookup(b *testing.B, fs *layerfs.RawFS, p string) (uint64, fuse.Attr) {
	b.Helper()
	id := uint64(1)
	var out fuse.EntryOut
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if st := fs.Lookup(nil, &fuse.InHeader{NodeId: id}, c, &out); !st.Ok() {
			b.Fatalf("lookup %s (%s): %v", p, c, st)
		}
		id = out.NodeId
	}
	return id, out.Attr
}

func BenchmarkLookup(b *testing.B) {
	s := rawFileSystems(b)
	dir, name := path.Split(s.ds.SmallFile)
	s.each(b, func(b *testing.B, fs *layerfs.RawFS) {
		parent, _ := lookup(b, fs, dir)
		h := &fuse.InHeader{NodeId: parent}
		b.Run("hit", func(b *testing.B) {
			var out fuse.EntryOut
			b.ReportAllocs()
			for b.Loop() {
				if st := fs.Lookup(nil, h, name, &out); !st.Ok() {
					b.Fatal(st)
				}
			}
		})
		b.Run("miss", func(b *testing.B) {
			var out fuse.EntryOut
			b.ReportAllocs()
			for b.Loop() {
				if st := fs.Lookup(nil, h, "no-such-name", &out); st != fuse.ENOENT {
					b.Fatal(st)
				}
			}
		})
	})
}

func BenchmarkGetattr(b *testing.B) {
	s := rawFileSystems(b)
	s.each(b, func(b *testing.B, fs *layerfs.RawFS) {
		for _, c := range []struct{ name, path string }{{"file", s.ds.SmallFile}, {"dir", s.ds.Tree}} {
			id, _ := lookup(b, fs, c.path)
			b.Run(c.name, func(b *testing.B) {
				in := &fuse.GetAttrIn{InHeader: fuse.InHeader{NodeId: id}}
				var out fuse.AttrOut
				b.ReportAllocs()
				for b.Loop() {
					if st := fs.GetAttr(nil, in, &out); !st.Ok() {
						b.Fatal(st)
					}
				}
			})
		}
	})
}

func BenchmarkReaddir(b *testing.B) {
	s := rawFileSystems(b)
	dir := path.Dir(s.ds.SmallFile)
	ents, err := os.ReadDir(filepath.Join(s.ds.Dir, "layers/1-tree", dir))
	if err != nil {
		b.Fatal(err)
	}
	s.each(b, func(b *testing.B, fs *layerfs.RawFS) {
		id, _ := lookup(b, fs, dir)
		buf := make([]byte, 128<<10)
		b.ReportAllocs()
		for b.Loop() {
			var oo fuse.OpenOut
			if st := fs.OpenDir(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: id}}, &oo); !st.Ok() {
				b.Fatal(st)
			}
			l := fuse.NewDirEntryList(buf, 0)
			in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: id}, Fh: oo.Fh, Size: uint32(len(buf))}
			if st := fs.ReadDirPlus(nil, in, l); !st.Ok() {
				b.Fatal(st)
			}
			if len(l.Bytes()) < len(ents)*100 {
				b.Fatalf("readdirplus returned %d bytes for %d entries", len(l.Bytes()), len(ents))
			}
			fs.ReleaseDir(&fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: id}, Fh: oo.Fh})
		}
		b.ReportMetric(float64(len(ents)), "entries/op")
	})
}

// readBench opens p and reads it in pieces of size bytes, wrapping around.
func readBench(b *testing.B, fs *layerfs.RawFS, p string, size int) {
	id, attr := lookup(b, fs, p)
	var oo fuse.OpenOut
	if st := fs.Open(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: id}, Flags: uint32(os.O_RDONLY)}, &oo); !st.Ok() {
		b.Fatal(st)
	}
	defer fs.Release(nil, &fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: id}, Fh: oo.Fh})
	if int64(size) > int64(attr.Size) {
		size = int(attr.Size)
	}
	buf := make([]byte, size)
	in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: id}, Fh: oo.Fh, Size: uint32(size)}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		res, st := fs.Read(nil, in, buf)
		if !st.Ok() {
			b.Fatal(st)
		}
		got, st := res.Bytes(buf)
		if !st.Ok() || len(got) == 0 {
			b.Fatalf("read at %d: %d bytes, %v", in.Offset, len(got), st)
		}
		res.Done()
		in.Offset += uint64(len(got))
		if in.Offset >= attr.Size {
			in.Offset = 0
		}
	}
}

func BenchmarkReadInline(b *testing.B) {
	s := rawFileSystems(b)
	s.each(b, func(b *testing.B, fs *layerfs.RawFS) { readBench(b, fs, s.inline, 4096) })
}

func BenchmarkReadObject(b *testing.B) {
	s := rawFileSystems(b)
	s.each(b, func(b *testing.B, fs *layerfs.RawFS) { readBench(b, fs, s.ds.Big, 1<<20) })
}

// BenchmarkOpenSmall is the request path of reading a small lower file
// whole: with its pages in the kernel's cache (FOPEN_KEEP_CACHE) the
// kernel sends OPEN and RELEASE only ("warm"); the first time, one READ
// in between ("cold").
func BenchmarkOpenSmall(b *testing.B) {
	s := rawFileSystems(b)
	s.each(b, func(b *testing.B, fs *layerfs.RawFS) {
		id, attr := lookup(b, fs, s.ds.SmallFile)
		buf := make([]byte, 128<<10)
		for _, read := range []bool{false, true} {
			name := "warm"
			if read {
				name = "cold"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var oo fuse.OpenOut
					if st := fs.Open(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: id}, Flags: uint32(os.O_RDONLY)}, &oo); !st.Ok() {
						b.Fatal(st)
					}
					if read {
						in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: id}, Fh: oo.Fh, Size: uint32(len(buf))}
						res, st := fs.Read(nil, in, buf)
						if !st.Ok() {
							b.Fatal(st)
						}
						got, st := res.Bytes(buf)
						if !st.Ok() || uint64(len(got)) != attr.Size {
							b.Fatalf("read %d bytes of %d, %v", len(got), attr.Size, st)
						}
						res.Done()
					}
					fs.Release(nil, &fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: id}, Fh: oo.Fh})
				}
			})
		}
	})
}

// BenchmarkCreate is the server's side of one os.WriteFile of a new 512 B
// file in a directory made on the mount, with the requests the kernel
// sends for it (counted with a debug mount): a LOOKUP of the name that
// fails, CREATE, GETXATTR of security.capability before the first write,
// RELEASE at close, and a GETATTR of the directory, whose attributes the
// kernel dropped when the file was made (it needs them for the permission
// check of the next path walk). On a mount the write goes to the upper
// file through passthrough; here it is a WRITE. FORGET follows, as the
// kernel sends it for inodes it drops, so the tree does not grow.
func BenchmarkCreate(b *testing.B) {
	s := rawFileSystems(b)
	data := bytes.Repeat([]byte("fusebox\n"), 64)
	for _, c := range s.chains {
		b.Run(c.name, func(b *testing.B) {
			fs, err := layerfs.NewRawFS(context.Background(), layerfs.MountOptions{
				Lowers: c.chain, UpperDir: b.TempDir(), WorkDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer fs.Close()
			var dir fuse.EntryOut
			if st := fs.Mkdir(nil, &fuse.MkdirIn{InHeader: fuse.InHeader{NodeId: 1}, Mode: 0o755}, "scratch", &dir); !st.Ok() {
				b.Fatal(st)
			}
			hdr := fuse.InHeader{NodeId: dir.NodeId}
			xbuf := make([]byte, 64)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				name := "f" + strconv.Itoa(i)
				i++
				var eo fuse.EntryOut
				if st := fs.Lookup(nil, &hdr, name, &eo); st != fuse.ENOENT {
					b.Fatalf("lookup of a new name: %v", st)
				}
				var co fuse.CreateOut
				in := &fuse.CreateIn{InHeader: hdr, Flags: uint32(os.O_WRONLY | os.O_CREATE | os.O_TRUNC), Mode: 0o644}
				if st := fs.Create(nil, in, name, &co); !st.Ok() {
					b.Fatal(st)
				}
				fh := fuse.InHeader{NodeId: co.NodeId}
				if _, st := fs.GetXAttr(nil, &fh, "security.capability", xbuf); st != fuse.ENOATTR {
					b.Fatalf("getxattr security.capability of a new file: %v", st)
				}
				if n, st := fs.Write(nil, &fuse.WriteIn{InHeader: fh, Fh: co.Fh, Size: uint32(len(data))}, data); !st.Ok() || int(n) != len(data) {
					b.Fatalf("write: %d, %v", n, st)
				}
				fs.Release(nil, &fuse.ReleaseIn{InHeader: fh, Fh: co.Fh})
				var ao fuse.AttrOut
				if st := fs.GetAttr(nil, &fuse.GetAttrIn{InHeader: hdr}, &ao); !st.Ok() {
					b.Fatal(st)
				}
				fs.Forget(co.NodeId, 1)
			}
		})
	}
}
