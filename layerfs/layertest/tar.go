package layertest

import (
	"archive/tar"
	"bytes"
	"path"
	"testing"
	"time"

	"github.com/fusebox/fusebox/cas"
)

// Tar writes l as a layer tar in the form images carry: whiteouts as
// ".wh.NAME" files, opaque directories as a ".wh..wh..opq" file inside
// them, hard links as tar links, xattrs as SCHILY.xattr PAX records. A
// store ingests it into the same entries the other forms give.
func Tar(t testing.TB, l Layer) []byte {
	t.Helper()
	mtime := time.Unix(1700000000, 0)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range l {
		h := &tar.Header{Name: f.Path, Mode: int64(f.Mode), Uid: int(f.UID), Gid: int(f.GID), ModTime: mtime, Format: tar.FormatPAX}
		switch f.Type {
		case cas.TypeRegular:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		case cas.TypeDir:
			h.Typeflag, h.Name = tar.TypeDir, f.Path+"/"
		case cas.TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Linkname
		case cas.TypeHardlink:
			h.Typeflag, h.Linkname = tar.TypeLink, f.Linkname
		case cas.TypeFifo:
			h.Typeflag = tar.TypeFifo
		case cas.TypeChar:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(f.Dev[0]), int64(f.Dev[1])
		case cas.TypeBlock:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeBlock, int64(f.Dev[0]), int64(f.Dev[1])
		case cas.TypeWhiteout:
			h = &tar.Header{Typeflag: tar.TypeReg, Name: path.Join(path.Dir(f.Path), ".wh."+path.Base(f.Path)), Mode: 0644, ModTime: mtime}
		case cas.TypeOpaque:
			h = &tar.Header{Typeflag: tar.TypeReg, Name: path.Join(f.Path, ".wh..wh..opq"), Mode: 0644, ModTime: mtime}
		default:
			t.Fatalf("layer tar: %s: unknown type %v", f.Path, f.Type)
		}
		for k, v := range f.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = string(v)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("layer tar: %s: %v", f.Path, err)
		}
		if f.Type == cas.TypeRegular {
			if _, err := tw.Write(f.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
