package cas

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// AddRepoDigest records that an image is known to a registry by a manifest
// digest ("name@sha256:…"), as a pull or a push of an image already stored
// learns; a reference already recorded for the image changes nothing. The
// same repository's older digest is replaced, as Docker shows one digest
// per repository. ErrNotFound when the image is not stored.
func (s *Store) AddRepoDigest(ctx context.Context, id digest.Digest, repoDigest string) error {
	repo, _, ok := cutDigest(repoDigest)
	if !ok {
		return fmt.Errorf("add repo digest %q: not name@digest", repoDigest)
	}
	err := s.update(ctx, func(txn *badger.Txn) error {
		b, err := getValue(txn, imageKey(id))
		if err != nil {
			return err
		}
		rec, err := decodeImage(b)
		if err != nil {
			return err
		}
		if slices.Contains(rec.RepoDigests, repoDigest) {
			return nil
		}
		rec.RepoDigests = slices.DeleteFunc(rec.RepoDigests, func(r string) bool {
			old, _, _ := cutDigest(r)
			return old == repo
		})
		rec.RepoDigests = append(rec.RepoDigests, repoDigest)
		val, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return txn.Set(imageKey(id), val)
	})
	if err != nil {
		return fmt.Errorf("image %s: add repo digest: %w", id, err)
	}
	return nil
}

func cutDigest(ref string) (repo, dgst string, ok bool) {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == '@' {
			return ref[:i], ref[i+1:], i > 0
		}
	}
	return "", "", false
}
