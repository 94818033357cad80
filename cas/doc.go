// Package cas is fusebox's content-addressed store: one Badger database for
// metadata (images, tags, configs, layer file indexes, tar-split data,
// reference counts) and plain object files for file contents, named by
// digest under objects/sha256/xx/<hex>.
//
// Importing a layer: the caller streams a layer tar (plain, gzip or zstd)
// into IngestLayer. In one pass the store checks the compressed digest and
// the diff_id, writes each regular file's bytes once (a file already present
// in any layer of any image is not stored again), keeps the tar-split data
// and builds the layer's file index. The exact layer tar can be rebuilt from
// the index, the tar-split data and the objects.
//
// Bytes live in files, not in Badger, because FUSE passthrough, splice,
// reflinks and a page cache shared between containers all need real file
// descriptors.
package cas
