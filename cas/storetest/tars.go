package storetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// file is one entry of a test tar: a tar header and, for regular files,
// its content.
type file struct {
	hdr  tar.Header
	data []byte
}

var epoch = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func dir(name string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}}
}

func reg(name string, data []byte) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}, data: data}
}

func symlink(name, target string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hardlink(name, target string) file {
	return file{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: epoch}}
}

// buildTar writes files as a tar; extra zero bytes after the archive end
// test that padding survives the round trip.
func buildTar(t testing.TB, files []file, padding int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := f.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %s: %v", h.Name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatalf("write %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	buf.Write(make([]byte, padding))
	return buf.Bytes()
}

type compression string

const (
	plain compression = "plain"
	gz    compression = "gzip"
	zst   compression = "zstd"
)

func compress(t testing.TB, c compression, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case plain:
		return b
	case gz:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case zst:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// random returns n incompressible bytes.
func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
