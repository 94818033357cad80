// Package registry moves images between fusebox's store and OCI/Docker
// registries: Pull, Push, Login (credential check) and Search, with the
// registry protocol spoken through go-containerregistry's transport (ping,
// scheme choice, basic and token authentication, registry error bodies).
//
// Pulling streams each layer blob from the registry straight into
// cas.IngestLayer with its expected compressed digest and diff_id, so the
// bytes are verified as they arrive and never land in a temporary copy.
// Every layer is ingested under a cas.Lease before the config, the image
// record and the tag are written: a pull that fails or is cancelled halfway
// releases the lease, which removes what it brought, and the store is as it
// was. Layers the store already has (same diff_id) are not fetched.
//
// Pushing rebuilds each layer tar from the store (cas.LayerTar gives the
// exact bytes that were ingested, hence the same diff_ids), gzips it into a
// temp file while hashing it, asks the registry whether it has that blob
// (HEAD) and uploads it only if not. The temp file is there because a
// registry upload must name the blob's digest and size when it completes,
// and gzip is the expensive step: compressing once into a file costs one
// pass of CPU and a sequential write, where a hashing first pass would
// compress every missing layer twice. Layers whose compressed digest is
// already known from the manifest they were pulled with are checked with
// HEAD before anything is compressed.
//
// Which hosts a reference reaches is a Config: registry mirrors for
// docker.io (Docker Hub itself is unreachable in many sandboxes) and the
// registries that may be spoken to over plain HTTP. As in Docker, localhost
// and 127.0.0.0/8 may always use HTTP; any other host needs to be listed
// with --insecure-registry.
//
// Progress is reported as Events carrying Docker's status texts ("Pulling
// fs layer", "Downloading", "Already exists", "Pushed", "Digest: …"); the
// daemon turns them into Docker's JSON progress stream.
package registry
