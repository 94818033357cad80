package cas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// PutBlob stores a small blob (an image config, a manifest) under its
// sha256 digest. Storing the same bytes again is a no-op.
func (s *Store) PutBlob(ctx context.Context, data []byte) (digest.Digest, error) {
	d := digest.FromBytes(data)
	err := s.update(ctx, func(txn *badger.Txn) error {
		return txn.Set(blobKey(d), data)
	})
	if err != nil {
		return "", fmt.Errorf("put blob %s: %w", d, err)
	}
	return d, nil
}

// Blob returns a blob's bytes; ErrNotFound when absent.
func (s *Store) Blob(ctx context.Context, d digest.Digest) ([]byte, error) {
	var b []byte
	err := s.db.View(func(txn *badger.Txn) (err error) {
		b, err = getValue(txn, blobKey(d))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return b, nil
}

// DeleteBlob removes a blob; absent is not an error.
func (s *Store) DeleteBlob(ctx context.Context, d digest.Digest) error {
	return s.update(ctx, func(txn *badger.Txn) error { return txn.Delete(blobKey(d)) })
}

// ImageRecord is what the store keeps of an image. The config itself is a
// blob (PutBlob) whose digest is the ID.
type ImageRecord struct {
	// ID is the config digest.
	ID digest.Digest `json:"id"`
	// DiffIDs are the layers, base first, as in the config's rootfs.
	DiffIDs []digest.Digest `json:"diff_ids"`
	// Parent is the image this one was committed from locally (docker
	// history shows local IDs through it); empty for loaded images.
	Parent digest.Digest `json:"parent,omitempty"`
	// Created is the config's creation time.
	Created time.Time `json:"created"`
	// Manifest is the digest of the image's manifest blob, when known
	// (loaded from an OCI layout or pulled); empty otherwise.
	Manifest digest.Digest `json:"manifest,omitempty"`
	// RepoDigests are "name@sha256:..." references the image was pulled
	// or loaded by.
	RepoDigests []string `json:"repo_digests,omitempty"`
	// Stored is when the store received the image.
	Stored time.Time `json:"stored"`
	// Size is the sum of the content sizes of the image's layers, counted
	// once each (filled in by Image and Images, not stored).
	Size int64 `json:"-"`
}

func distinct(ds []digest.Digest) []digest.Digest {
	seen := map[digest.Digest]bool{}
	var out []digest.Digest
	for _, d := range ds {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// PutImage stores an image record and, in the same transaction, takes a
// reference on each of its layers, which must all be stored. An image
// already stored is ErrExists and changes nothing.
func (s *Store) PutImage(ctx context.Context, rec ImageRecord) error {
	if err := rec.ID.Validate(); err != nil {
		return fmt.Errorf("put image: id: %w", err)
	}
	if rec.Stored.IsZero() {
		rec.Stored = time.Now().UTC()
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	err = s.update(ctx, func(txn *badger.Txn) error {
		if _, err := txn.Get(imageKey(rec.ID)); err == nil {
			return ErrExists
		}
		if rec.Parent != "" {
			if _, err := getValue(txn, imageKey(rec.Parent)); err != nil {
				return fmt.Errorf("parent %s: %w", rec.Parent, err)
			}
		}
		for _, d := range distinct(rec.DiffIDs) {
			lr, err := s.layerRecord(txn, d)
			if err != nil {
				return err
			}
			lr.Refs++
			b, err := json.Marshal(lr)
			if err != nil {
				return err
			}
			if err := txn.Set(layerKey(d), b); err != nil {
				return err
			}
		}
		return txn.Set(imageKey(rec.ID), val)
	})
	if err != nil {
		return fmt.Errorf("put image %s: %w", rec.ID, err)
	}
	return nil
}

func (s *Store) imageSize(txn *badger.Txn, rec *ImageRecord) error {
	rec.Size = 0
	for _, d := range distinct(rec.DiffIDs) {
		lr, err := s.layerRecord(txn, d)
		if err != nil {
			return err
		}
		rec.Size += lr.ContentSize
	}
	return nil
}

func decodeImage(b []byte) (ImageRecord, error) {
	var rec ImageRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("image record: %w", err)
	}
	return rec, nil
}

// Image returns an image record; ErrNotFound when absent.
func (s *Store) Image(ctx context.Context, id digest.Digest) (ImageRecord, error) {
	var rec ImageRecord
	err := s.db.View(func(txn *badger.Txn) error {
		b, err := getValue(txn, imageKey(id))
		if err != nil {
			return err
		}
		if rec, err = decodeImage(b); err != nil {
			return err
		}
		return s.imageSize(txn, &rec)
	})
	if err != nil {
		return ImageRecord{}, fmt.Errorf("image %s: %w", id, err)
	}
	return rec, nil
}

// Images lists every image, in ID order.
func (s *Store) Images(ctx context.Context) ([]ImageRecord, error) {
	var out []ImageRecord
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte{kindImage}, true, func(_, v []byte) error {
			rec, err := decodeImage(v)
			if err != nil {
				return err
			}
			if err := s.imageSize(txn, &rec); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// ResolveImageID finds the one image whose ID starts with prefix, given
// with or without "sha256:". ErrNotFound when none does, ErrAmbiguous when
// several do.
func (s *Store) ResolveImageID(ctx context.Context, prefix string) (digest.Digest, error) {
	hex := strings.TrimPrefix(prefix, "sha256:")
	if hex == "" || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("image %q: %w", prefix, ErrNotFound)
	}
	var found []digest.Digest
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, append([]byte{kindImage}, "sha256:"+hex...), false, func(k, _ []byte) error {
			_, d, err := parseDigestKey(k)
			if err != nil {
				return err
			}
			found = append(found, d)
			return nil
		})
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("resolve image %q: %w", prefix, err)
	case len(found) == 0:
		return "", fmt.Errorf("image %q: %w", prefix, ErrNotFound)
	case len(found) > 1:
		return "", fmt.Errorf("image ID prefix %q matches %d images: %w", prefix, len(found), ErrAmbiguous)
	}
	return found[0], nil
}

// UpdateImage changes an image record's metadata in one transaction: fn
// may change Parent, Created, Manifest and RepoDigests, not the ID or the
// layers. ErrNotFound when
// the image is not stored.
func (s *Store) UpdateImage(ctx context.Context, id digest.Digest, fn func(rec *ImageRecord) error) error {
	err := s.update(ctx, func(txn *badger.Txn) error {
		b, err := getValue(txn, imageKey(id))
		if err != nil {
			return err
		}
		rec, err := decodeImage(b)
		if err != nil {
			return err
		}
		orig := slices.Clone(rec.DiffIDs)
		if err := fn(&rec); err != nil {
			return err
		}
		if rec.ID != id || !slices.Equal(rec.DiffIDs, orig) {
			return errors.New("the ID and the layers of an image cannot change")
		}
		nb, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return txn.Set(imageKey(id), nb)
	})
	if err != nil {
		return fmt.Errorf("update image %s: %w", id, err)
	}
	return nil
}

// DeleteImage removes an image record and its config blob, releases its
// layers, and removes the layers and contents nothing references any more.
// It refuses (ErrInUse) an image that is still tagged or is the Parent of
// another image: the caller untags first, as docker rmi does. A manifest
// blob (ImageRecord.Manifest) is the caller's to delete with DeleteBlob.
func (s *Store) DeleteImage(ctx context.Context, id digest.Digest) error {
	var released []digest.Digest
	err := s.update(ctx, func(txn *badger.Txn) error {
		released = released[:0]
		b, err := getValue(txn, imageKey(id))
		if err != nil {
			return err
		}
		rec, err := decodeImage(b)
		if err != nil {
			return err
		}
		var tags []string
		if err := scan(txn, []byte{kindTag}, true, func(k, v []byte) error {
			if digest.Digest(v) == id {
				ref, _ := parseTagKey(k)
				tags = append(tags, ref)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(tags) > 0 {
			return fmt.Errorf("tagged as %s: %w", strings.Join(tags, ", "), ErrInUse)
		}
		var child digest.Digest
		if err := scan(txn, []byte{kindImage}, true, func(_, v []byte) error {
			c, err := decodeImage(v)
			if err == nil && c.Parent == id {
				child = c.ID
			}
			return err
		}); err != nil {
			return err
		}
		if child != "" {
			return fmt.Errorf("image has dependent child image %s: %w", child.Encoded()[:12], ErrInUse)
		}
		for _, d := range distinct(rec.DiffIDs) {
			lr, err := s.layerRecord(txn, d)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if lr.Refs--; lr.Refs <= 0 {
				released = append(released, d)
			}
			nb, err := json.Marshal(lr)
			if err != nil {
				return err
			}
			if err := txn.Set(layerKey(d), nb); err != nil {
				return err
			}
		}
		if err := txn.Delete(blobKey(id)); err != nil {
			return err
		}
		return txn.Delete(imageKey(id))
	})
	if err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	if err := s.collectLayers(ctx, released); err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	return nil
}

// SetTag points ref (a normalized reference) at an image, moving it if it
// pointed elsewhere. ErrNotFound when the image is not stored.
func (s *Store) SetTag(ctx context.Context, ref string, id digest.Digest) error {
	if ref == "" {
		return fmt.Errorf("tag: empty reference: %w", ErrNotFound)
	}
	err := s.update(ctx, func(txn *badger.Txn) error {
		if _, err := getValue(txn, imageKey(id)); err != nil {
			return fmt.Errorf("image %s: %w", id, err)
		}
		return txn.Set(tagKey(ref), []byte(id))
	})
	if err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	return nil
}

// DeleteTag removes a tag; ErrNotFound when absent.
func (s *Store) DeleteTag(ctx context.Context, ref string) error {
	err := s.update(ctx, func(txn *badger.Txn) error {
		if _, err := getValue(txn, tagKey(ref)); err != nil {
			return err
		}
		return txn.Delete(tagKey(ref))
	})
	if err != nil {
		return fmt.Errorf("untag %s: %w", ref, err)
	}
	return nil
}

// Tag returns the image a reference points at; ErrNotFound when none.
func (s *Store) Tag(ctx context.Context, ref string) (digest.Digest, error) {
	var b []byte
	err := s.db.View(func(txn *badger.Txn) (err error) {
		b, err = getValue(txn, tagKey(ref))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("tag %s: %w", ref, err)
	}
	return digest.Digest(b), nil
}

// TagRecord is one tag.
type TagRecord struct {
	Ref string
	ID  digest.Digest
}

// Tags lists every tag in reference order.
func (s *Store) Tags(ctx context.Context) ([]TagRecord, error) {
	var out []TagRecord
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte{kindTag}, true, func(k, v []byte) error {
			ref, err := parseTagKey(k)
			if err != nil {
				return err
			}
			out = append(out, TagRecord{Ref: ref, ID: digest.Digest(bytes.Clone(v))})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	slices.SortFunc(out, func(a, b TagRecord) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}
