// Package cas is fusebox's content-addressed store: one Badger database for
// metadata (images, tags, configs, layer file indexes, tar-split data,
// reference counts, other packages' records) and plain object files for
// file contents, named by digest under objects/sha256/xx/<hex>.
//
// Bytes live in files, not in Badger, because FUSE passthrough, splice,
// reflinks and a page cache shared between containers all need real file
// descriptors. Files of at most a few KiB stay inline in Badger: an object
// file would cost an inode and a block for each.
//
// # Importing an image
//
//  1. lease := store.NewLease(); defer lease.Release(ctx). The lease keeps
//     the layers about to be ingested from being collected before an image
//     references them.
//  2. For each layer, IngestLayer(ctx, r, IngestOptions{Digest, DiffID,
//     Lease: lease}). In one pass the store detects the compression (plain,
//     gzip, zstd), checks the compressed digest and the diff_id, refuses
//     unsafe tars (ErrInvalidLayer) and bombs (ErrTooLarge), writes each
//     regular file's bytes once (content already stored by any layer of any
//     image is not written again), keeps the tar-split data and builds the
//     layer's file index ([]Entry). Object files are written first (temp
//     file, fsync, rename, directory fsync); the metadata then commits, so
//     a crash leaves at worst unreferenced files, which Open removes. On
//     error the store is exactly as it was.
//  3. PutBlob(config), then PutImage(ImageRecord{ID: config digest,
//     DiffIDs, ...}): one transaction takes a reference on every layer.
//  4. SetTag(ref, id) for each name.
//
// # Serving a container
//
// A union filesystem asks Entries(diffID) for each layer's index, then
// reads contents through ObjectPath (a file to open, for passthrough) or
// ReadInline / OpenContent. Contents never change once stored.
//
// # Adopting files
//
// An ingest may be offered the bytes of a layer's files as open files
// (IngestOptions.Files): the store reflinks them where it can, and with
// IngestOptions.Adopt links the offered inode in as the object itself,
// marked XattrShared, so that a commit of a container's new file takes no
// second copy on disk. The bytes are always checked against the tar's. The
// owner of the other name must copy the file before changing its bytes
// (layerfs does); Adopted tells whether a file is still shared.
//
// # Exporting
//
// LayerTar(diffID) rebuilds the original tar bit for bit from the tar-split
// data and the contents, so save and push give back the same diff_ids.
//
// # Removing
//
// DeleteTag, then DeleteImage: the image's layer references are released;
// a layer no image references and no lease holds is removed with its
// index, and a content no remaining layer names is removed with it. Object
// reference counts are per layer, so a file shared by two layers stays
// until both are gone.
//
// # Crashes
//
// Open cleans what an interrupted process left: temp files, object files
// and inline contents no record names, index pieces of ingests that never
// committed, layers no image references, and (when a pending marker shows
// a commit died halfway) it recounts every object's references from the
// layer indexes. Fsck re-hashes every content and checks every index entry's
// content is stored.
package cas
