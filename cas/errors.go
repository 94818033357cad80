package cas

import "errors"

// Sentinel errors. Every error the store returns wraps at most one of these,
// so callers decide with errors.Is and never by matching text.
var (
	// ErrNotFound: no image, layer, blob, object, tag or key by that name.
	ErrNotFound = errors.New("not found")
	// ErrExists: the thing is already stored. Callers that only want it to
	// be there (load, pull) treat it as success.
	ErrExists = errors.New("already exists")
	// ErrDigestMismatch: a stream's digest is not the one the caller expected.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrInvalidLayer: a layer tar the store refuses: an entry outside the
	// layer root, a link escaping it, a duplicate, an unsupported entry
	// type, or a stream that is not a tar at all.
	ErrInvalidLayer = errors.New("invalid layer")
	// ErrTooLarge: the uncompressed layer is larger than the configured
	// limit (a decompression bomb, or a limit set too low).
	ErrTooLarge = errors.New("layer too large")
	// ErrInUse: the image is still tagged or is the parent of another image.
	ErrInUse = errors.New("in use")
	// ErrAmbiguous: a short image ID matches more than one image.
	ErrAmbiguous = errors.New("ambiguous")
)
