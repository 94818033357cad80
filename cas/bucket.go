package cas

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Bucket is a namespaced key/value area of the store's database, for
// packages that keep records of their own (the daemon's containers,
// layerfs journals) without opening a second database: Badger allows one
// process per directory, and one database means one backup and one fsck.
type Bucket struct {
	s    *Store
	name string
}

// Bucket returns the bucket called name (at most 65535 bytes). Buckets
// need no creation; an unused bucket is empty.
func (s *Store) Bucket(name string) *Bucket { return &Bucket{s: s, name: name} }

// KV is one record of a bucket.
type KV struct {
	Key   string
	Value []byte
}

// Get returns the value under key; ErrNotFound when absent.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := b.s.db.View(func(txn *badger.Txn) (err error) {
		v, err = getValue(txn, bucketKey(b.name, key))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", b.name, key, err)
	}
	return v, nil
}

// Put sets key to value.
func (b *Bucket) Put(ctx context.Context, key string, value []byte) error {
	return b.Update(ctx, func(tx *BucketTx) error { return tx.Put(key, value) })
}

// Delete removes key; absent is not an error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	return b.Update(ctx, func(tx *BucketTx) error { return tx.Delete(key) })
}

// List returns the records whose key starts with prefix, in key order.
func (b *Bucket) List(ctx context.Context, prefix string) ([]KV, error) {
	var out []KV
	err := b.s.db.View(func(txn *badger.Txn) error {
		return scan(txn, bucketKey(b.name, prefix), true, func(k, v []byte) error {
			_, key, err := parseBucketKey(k)
			if err != nil {
				return err
			}
			out = append(out, KV{Key: key, Value: v})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list %s/%s: %w", b.name, prefix, err)
	}
	return out, nil
}

// BucketTx is a bucket inside one transaction: all of its writes happen,
// or none.
type BucketTx struct {
	b   *Bucket
	txn *badger.Txn
}

// Get reads inside the transaction; ErrNotFound when absent.
func (tx *BucketTx) Get(key string) ([]byte, error) {
	v, err := getValue(tx.txn, bucketKey(tx.b.name, key))
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", tx.b.name, key, err)
	}
	return v, nil
}

// Put sets key to value when the transaction commits.
func (tx *BucketTx) Put(key string, value []byte) error {
	return tx.txn.Set(bucketKey(tx.b.name, key), value)
}

// Delete removes key when the transaction commits.
func (tx *BucketTx) Delete(key string) error {
	return tx.txn.Delete(bucketKey(tx.b.name, key))
}

// Update runs fn in one read-write transaction, retried when it collides
// with another; fn must be safe to run again. Keep it small: Badger bounds a
// transaction's size (ErrTxnTooBig).
func (b *Bucket) Update(ctx context.Context, fn func(tx *BucketTx) error) error {
	err := b.s.update(ctx, func(txn *badger.Txn) error { return fn(&BucketTx{b: b, txn: txn}) })
	if err != nil {
		return fmt.Errorf("update %s: %w", b.name, err)
	}
	return nil
}
