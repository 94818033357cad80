// Package image owns what an image is outside the store: references,
// configs, --change instructions and the archive formats.
//
// References are normalised as Docker does (busybox →
// docker.io/library/busybox:latest) and stored in that full form; they are
// shown in the familiar short form. The image ID is the digest of the config
// bytes, which are kept exactly as they came, because re-encoding them would
// change the ID.
//
// Archives are read from a file on disk, never from a one-pass stream: a
// docker-archive names its layers in manifest.json, which `docker save` may
// write after the layers, and an OCI archive needs index.json before any
// blob makes sense. [OpenArchive] therefore indexes the tar once (names,
// offsets, sizes; a truncated tar fails here) and then hands out layers as
// reopenable sections of the same file, verified against their digests
// while they are read. The daemon spools an API body to a temp file under
// its root first, decompressing it if it is gzip or zstd ([Decompress]).
// Writing goes the other way, as one stream: [SaveArchive] writes Docker
// 25+'s form (an OCI layout that is also a docker-archive) through a tar
// writer, pulling each layer from its opener as it goes.
package image
