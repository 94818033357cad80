package cas

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Every Badger key starts with one byte naming its kind, so that a prefix
// scan over one kind never sees another. Strings at the end of a key are
// written as they are; strings in the middle are length-prefixed; integers
// are big-endian so that byte order is numeric order.
const (
	kindLayer  byte = 'L' // layer record
	kindChunk  byte = 'C' // a piece of a layer's file index or tar-split data
	kindObject byte = 'O' // object record: size, inline flag, reference count
	kindInline byte = 'I' // the bytes of a small (inline) object
	kindBlob   byte = 'B' // a small blob: image config, manifest
	kindImage  byte = 'M' // image record
	kindTag    byte = 'T' // tag → image ID
	kindBucket byte = 'K' // other packages' records
	kindPend   byte = 'P' // a layer commit or removal in progress
)

// Chunk parts: which stream of a layer a chunk belongs to.
const (
	partEntries byte = 'e'
	partSplit   byte = 's'
)

// digestKey builds the key of every kind that is named by one digest:
//
//	+------+-------------------------------+
//	| kind | digest "sha256:<64 hex>"       |
//	+------+-------------------------------+
//	  1 B    len(digest) B
func digestKey(kind byte, d digest.Digest) []byte {
	k := make([]byte, 1+len(d))
	k[0] = kind
	copy(k[1:], d)
	return k
}

// parseDigestKey is the inverse of digestKey.
func parseDigestKey(k []byte) (byte, digest.Digest, error) {
	if len(k) < 2 {
		return 0, "", fmt.Errorf("key %x: too short", k)
	}
	d := digest.Digest(k[1:])
	if err := d.Validate(); err != nil {
		return 0, "", fmt.Errorf("key %x: %w", k, err)
	}
	return k[0], d, nil
}

func layerKey(d digest.Digest) []byte  { return digestKey(kindLayer, d) }
func objectKey(d digest.Digest) []byte { return digestKey(kindObject, d) }
func inlineKey(d digest.Digest) []byte { return digestKey(kindInline, d) }
func blobKey(d digest.Digest) []byte   { return digestKey(kindBlob, d) }
func imageKey(d digest.Digest) []byte  { return digestKey(kindImage, d) }

// chunkID names one ingest's chunks. It is random so that two ingests of the
// same layer running at once never write the same keys.
type chunkID [16]byte

func (c chunkID) String() string { return hex.EncodeToString(c[:]) }

func parseChunkID(s string) (chunkID, error) {
	var c chunkID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(c) {
		return c, fmt.Errorf("chunk id %q: not 32 hex characters", s)
	}
	copy(c[:], b)
	return c, nil
}

// chunkKey is the key of piece seq of one stream (part) of an ingest:
//
//	+-----+-------------+------+------------+
//	| 'C' | chunk id    | part | seq        |
//	+-----+-------------+------+------------+
//	  1 B   16 B          1 B    4 B big-endian
func chunkKey(id chunkID, part byte, seq uint32) []byte {
	k := make([]byte, 0, 22)
	k = append(k, kindChunk)
	k = append(k, id[:]...)
	k = append(k, part)
	return binary.BigEndian.AppendUint32(k, seq)
}

// chunkPrefix is the first 17 bytes of chunkKey: every chunk of one ingest.
func chunkPrefix(id chunkID) []byte {
	return append([]byte{kindChunk}, id[:]...)
}

// parseChunkKey is the inverse of chunkKey.
func parseChunkKey(k []byte) (chunkID, byte, uint32, error) {
	var id chunkID
	if len(k) != 22 || k[0] != kindChunk {
		return id, 0, 0, fmt.Errorf("chunk key %x: malformed", k)
	}
	copy(id[:], k[1:17])
	return id, k[17], binary.BigEndian.Uint32(k[18:]), nil
}

// pendingKey marks an ingest (or a layer removal) whose object reference
// counts are changing over several transactions; its value is the diff_id.
// A marker found at Open means the counts may be off: they are recounted.
//
//	+-----+-------------+
//	| 'P' | chunk id    |
//	+-----+-------------+
//	  1 B   16 B
func pendingKey(id chunkID) []byte { return append([]byte{kindPend}, id[:]...) }

// parsePendingKey is the inverse of pendingKey.
func parsePendingKey(k []byte) (chunkID, error) {
	var id chunkID
	if len(k) != 17 || k[0] != kindPend {
		return id, fmt.Errorf("pending key %x: malformed", k)
	}
	copy(id[:], k[1:])
	return id, nil
}

// tagKey maps a normalized reference to an image ID:
//
//	+-----+--------------------------------------+
//	| 'T' | reference "docker.io/library/x:tag"  |
//	+-----+--------------------------------------+
//	  1 B   len(ref) B
func tagKey(ref string) []byte { return append([]byte{kindTag}, ref...) }

// parseTagKey is the inverse of tagKey.
func parseTagKey(k []byte) (string, error) {
	if len(k) < 2 || k[0] != kindTag {
		return "", fmt.Errorf("tag key %x: malformed", k)
	}
	return string(k[1:]), nil
}

// bucketKey is a key in another package's bucket:
//
//	+-----+-----------+-------------+-------------+
//	| 'K' | len(name) | bucket name | key         |
//	+-----+-----------+-------------+-------------+
//	  1 B   2 B big-endian            rest of the key
func bucketKey(name, key string) []byte {
	k := make([]byte, 0, 3+len(name)+len(key))
	k = append(k, kindBucket)
	k = binary.BigEndian.AppendUint16(k, uint16(len(name)))
	k = append(k, name...)
	return append(k, key...)
}

// parseBucketKey is the inverse of bucketKey.
func parseBucketKey(k []byte) (name, key string, err error) {
	if len(k) < 3 || k[0] != kindBucket {
		return "", "", fmt.Errorf("bucket key %x: malformed", k)
	}
	n := int(binary.BigEndian.Uint16(k[1:3]))
	if len(k) < 3+n {
		return "", "", fmt.Errorf("bucket key %x: name overruns key", k)
	}
	return string(k[3 : 3+n]), string(k[3+n:]), nil
}

// objectValue is the value under objectKey:
//
//	+------------+------------+-------+
//	| size       | refs       | flags |
//	+------------+------------+-------+
//	  8 B          8 B          1 B (bit 0: inline)
//
// refs counts the layers whose index names the object (once per layer).
type objectValue struct {
	Size   int64
	Refs   int64
	Inline bool
}

func (v objectValue) encode() []byte {
	b := make([]byte, 0, 17)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(v.Refs))
	var f byte
	if v.Inline {
		f = 1
	}
	return append(b, f)
}

func decodeObjectValue(b []byte) (objectValue, error) {
	if len(b) != 17 {
		return objectValue{}, fmt.Errorf("object record: %d bytes, want 17", len(b))
	}
	return objectValue{
		Size:   int64(binary.BigEndian.Uint64(b)),
		Refs:   int64(binary.BigEndian.Uint64(b[8:])),
		Inline: b[16]&1 != 0,
	}, nil
}
