package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/fusebox/fusebox/image/imageref"
)

// ErrInvalidReference is returned for a name that is not a valid image
// reference.
var ErrInvalidReference = imageref.ErrInvalid

// ParseReference normalises a user's image name the way Docker does:
// "ubuntu" becomes docker.io/library/ubuntu:latest, a name without tag gets
// ":latest", a digest reference keeps its digest. Uppercase letters, bad
// characters and the like fail with ErrInvalidReference.
func ParseReference(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		// Worded by imageref, so that the CLI, which parses with it, and
		// the daemon refuse a name with the same words (the two parsers
		// accept the same names: imageref's tests compare them).
		if _, ierr := imageref.ParseNormalized(s); ierr != nil {
			err = ierr
		}
		return nil, imageref.Invalid(s, err)
	}
	return reference.TagNameOnly(named), nil
}

// ParseRepoTag joins the repo and tag parameters of the API (tag, commit,
// import) into one normalised tagged reference. A tag inside repo is used
// when tag is empty.
func ParseRepoTag(repo, tag string) (reference.NamedTagged, error) {
	s := repo
	if tag != "" {
		s = repo + ":" + tag
	}
	named, err := ParseReference(s)
	if err != nil {
		return nil, err
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, fmt.Errorf("%w: %q: a tag cannot contain a digest", ErrInvalidReference, s)
	}
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrInvalidReference, s)
	}
	return tagged, nil
}

// Familiar is how Docker shows a reference: "busybox:latest",
// "example.com/app:v1".
func Familiar(r reference.Named) string { return reference.FamiliarString(r) }

// IsDigestPrefix reports whether s can only be an image ID or an ID prefix
// ("sha256:abc…" or hex without a tag), which rmi and inspect look up by ID
// before they try it as a name.
func IsDigestPrefix(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
