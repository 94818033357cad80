package bench

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// archiveTime is the modification time of every entry the archive writer
// emits, so that the same layers always give the same digests.
var archiveTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteImageArchive writes layers (top first, overlayfs directories) as a
// docker-archive (`docker save` format) tagged ref at dst: one layer tar per
// directory, whiteouts turned into ".wh." entries and opaque directories
// into ".wh..wh..opq", fixed times. It is how the harness hands its data set
// to `fusebox load`.
func WriteImageArchive(ctx context.Context, dst, ref string, layers []string) error {
	tmpDir, err := os.MkdirTemp(filepath.Dir(dst), ".archive-")
	if err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	defer os.Remove(dst + ".tmp")
	tw := tar.NewWriter(out)
	var diffIDs, layerPaths []string
	for i := len(layers) - 1; i >= 0; i-- {
		lt := filepath.Join(tmpDir, "layer.tar")
		digest, err := writeLayerTar(ctx, layers[i], lt)
		if err != nil {
			out.Close()
			return fmt.Errorf("image archive: layer %s: %w", layers[i], err)
		}
		name := digest + "/layer.tar"
		if err := addFile(tw, name, lt); err != nil {
			out.Close()
			return fmt.Errorf("image archive: %w", err)
		}
		diffIDs = append(diffIDs, "sha256:"+digest)
		layerPaths = append(layerPaths, name)
	}
	history := make([]map[string]any, len(diffIDs))
	for i := range history {
		history[i] = map[string]any{"created": archiveTime, "created_by": fmt.Sprintf("fusebox bench layer %d", i)}
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux", "created": archiveTime,
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": []string{"/bin/sh"},
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history": history,
	})
	sum := sha256.Sum256(config)
	configName := hex.EncodeToString(sum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{ref}, "Layers": layerPaths}})
	for _, f := range []struct {
		name string
		data []byte
	}{{configName, config}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: archiveTime, Typeflag: tar.TypeReg}); err != nil {
			out.Close()
			return fmt.Errorf("image archive: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			out.Close()
			return fmt.Errorf("image archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		out.Close()
		return fmt.Errorf("image archive: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	return os.Rename(dst+".tmp", dst)
}

func addFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: fi.Size(), ModTime: archiveTime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// writeLayerTar writes the layer tar of an overlayfs directory and returns
// the hex sha256 of the tar (its diff_id).
func writeLayerTar(ctx context.Context, dir, dst string) (string, error) {
	f, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	err = walkSorted(dir, "", func(rel string, fi fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		full := filepath.Join(dir, rel)
		hdr := &tar.Header{Name: rel, Mode: int64(fi.Mode().Perm()), Uid: int(st.Uid), Gid: int(st.Gid),
			ModTime: archiveTime, Format: tar.FormatPAX}
		if fi.Mode()&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch m := fi.Mode(); {
		case m&fs.ModeCharDevice != 0 && st.Rdev == 0:
			hdr = &tar.Header{Name: filepath.Join(filepath.Dir(rel), ".wh."+filepath.Base(rel)), Mode: 0o644,
				ModTime: archiveTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
			return tw.WriteHeader(hdr)
		case m.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if isOpaque(full) {
				return tw.WriteHeader(&tar.Header{Name: rel + "/.wh..wh..opq", Mode: 0o644, ModTime: archiveTime,
					Typeflag: tar.TypeReg, Format: tar.FormatPAX})
			}
			return nil
		case m&fs.ModeSymlink != 0:
			link, err := os.Readlink(full)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, link
			return tw.WriteHeader(hdr)
		case m.IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			src, err := os.Open(full)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		default:
			return fmt.Errorf("%s: file type %s not supported in a layer", full, m.Type())
		}
	})
	if err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// walkSorted calls fn for every entry below dir/rel in name order, parents
// before children (rel is "" for dir itself, which is not passed to fn).
func walkSorted(dir, rel string, fn func(rel string, fi fs.FileInfo) error) error {
	entries, err := os.ReadDir(filepath.Join(dir, rel))
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		child := e.Name()
		if rel != "" {
			child = rel + "/" + e.Name()
		}
		if strings.HasPrefix(child, "/") {
			child = child[1:]
		}
		fi, err := os.Lstat(filepath.Join(dir, child))
		if err != nil {
			return err
		}
		if err := fn(child, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := walkSorted(dir, child, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
