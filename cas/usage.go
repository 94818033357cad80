package cas

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas/usage"
)

// The store's accounting and fsck report; their types live in the leaf
// package usage so that a client can decode them without the store.
type (
	Usage      = usage.Usage
	ImageUsage = usage.ImageUsage
	Problem    = usage.Problem
	Report     = usage.Report
)

// DiskUsage adds up the store's space.
func (s *Store) DiskUsage(ctx context.Context) (Usage, error) {
	var u Usage
	layerSize := map[digest.Digest]LayerInfo{}
	err := s.db.View(func(txn *badger.Txn) error {
		if err := scan(txn, []byte{kindObject}, true, func(_, v []byte) error {
			ov, err := decodeObjectValue(v)
			if err != nil {
				return err
			}
			if ov.Inline {
				u.InlineBytes += ov.Size
				u.InlineObjects++
			} else {
				u.ObjectBytes += ov.Size
				u.ObjectFiles++
			}
			return nil
		}); err != nil {
			return err
		}
		if err := scan(txn, []byte{kindLayer}, true, func(_, v []byte) error {
			rec, err := decodeLayerRecord(v)
			if err != nil {
				return err
			}
			u.Layers++
			u.LogicalBytes += rec.ContentSize
			layerSize[rec.DiffID] = rec.info()
			return nil
		}); err != nil {
			return err
		}
		return scan(txn, []byte{kindImage}, true, func(_, v []byte) error {
			rec, err := decodeImage(v)
			if err != nil {
				return err
			}
			iu := ImageUsage{ID: rec.ID}
			for _, d := range distinct(rec.DiffIDs) {
				li := layerSize[d]
				iu.Size += li.ContentSize
				if li.Refs > 1 {
					iu.SharedSize += li.ContentSize
				}
			}
			u.Images = append(u.Images, iu)
			return nil
		})
	})
	if err != nil {
		return Usage{}, fmt.Errorf("disk usage: %w", err)
	}
	u.SavedBytes = u.LogicalBytes - u.ObjectBytes - u.InlineBytes
	lsm, vlog := s.db.Size()
	u.MetadataBytes = lsm + vlog
	return u, nil
}

// Fsck re-hashes every stored content and checks that every index entry's
// content is stored. It only reads; problems are reported, not repaired.
func (s *Store) Fsck(ctx context.Context) (Report, error) {
	var r Report
	objs := map[digest.Digest]objectValue{}
	var layers []layerRecord
	err := s.db.View(func(txn *badger.Txn) error {
		if err := scan(txn, []byte{kindObject}, true, func(k, v []byte) error {
			_, d, err := parseDigestKey(k)
			if err != nil {
				r.Problems = append(r.Problems, Problem{Kind: "bad record", Detail: err.Error()})
				return nil
			}
			ov, err := decodeObjectValue(v)
			if err != nil {
				r.Problems = append(r.Problems, Problem{Kind: "bad record", Digest: d, Detail: err.Error()})
				return nil
			}
			objs[d] = ov
			return nil
		}); err != nil {
			return err
		}
		return scan(txn, []byte{kindLayer}, true, func(_, v []byte) error {
			rec, err := decodeLayerRecord(v)
			if err != nil {
				r.Problems = append(r.Problems, Problem{Kind: "bad record", Detail: err.Error()})
				return nil
			}
			layers = append(layers, rec)
			return nil
		})
	})
	if err != nil {
		return r, fmt.Errorf("fsck: %w", err)
	}
	buf := make([]byte, 1<<20)
	for d, ov := range objs {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		r.Objects++
		rc, err := s.OpenContent(ctx, d)
		if err != nil {
			r.Problems = append(r.Problems, Problem{Kind: "missing object", Digest: d, Detail: err.Error()})
			continue
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, rc, buf)
		rc.Close()
		switch got := digest.NewDigest(digest.SHA256, h); {
		case err != nil:
			r.Problems = append(r.Problems, Problem{Kind: "corrupt object", Digest: d, Detail: err.Error()})
		case n != ov.Size:
			r.Problems = append(r.Problems, Problem{Kind: "size mismatch", Digest: d, Detail: fmt.Sprintf("%d bytes, record says %d", n, ov.Size)})
		case got != d:
			r.Problems = append(r.Problems, Problem{Kind: "corrupt object", Digest: d, Detail: "content hashes to " + got.String()})
		}
	}
	for _, rec := range layers {
		r.Layers++
		es, err := s.Entries(ctx, rec.DiffID)
		if err != nil {
			r.Problems = append(r.Problems, Problem{Kind: "missing index", Digest: rec.DiffID, Detail: err.Error()})
			continue
		}
		for _, e := range es {
			r.Entries++
			if e.Type != TypeRegular || e.Digest == digest.SHA256.FromBytes(nil) {
				continue
			}
			if _, ok := objs[e.Digest]; !ok {
				r.Problems = append(r.Problems, Problem{Kind: "missing object", Digest: e.Digest, Detail: fmt.Sprintf("named by %s in layer %s", e.Path, rec.DiffID)})
			}
		}
	}
	return r, nil
}
