package imageref

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// The errors of Parse, worded as distribution/reference words them.
var (
	ErrReferenceInvalidFormat = errors.New("invalid reference format")
	ErrNameContainsUppercase  = errors.New("repository name must be lowercase")
	ErrNameEmpty              = errors.New("repository name must have at least one component")
	ErrNameTooLong            = fmt.Errorf("repository name must not be more than %d characters", maxPathLen)
)

// maxPathLen bounds a reference's path (the domain is not counted).
const maxPathLen = 255

// maxTagLen bounds a tag.
const maxTagLen = 128

const (
	defaultDomain = "docker.io"
	legacyDomain  = "index.docker.io"
	officialRepo  = "library/"
	defaultTag    = "latest"
)

// Reference is a parsed image reference. Path is empty only for a bare
// digest from ParseAny.
type Reference struct {
	Domain string // "docker.io", "localhost:5000", or empty
	Path   string // "library/busybox"
	Tag    string // empty when the reference has none
	Digest digest.Digest
}

// Name is the repository: domain and path.
func (r Reference) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String is the whole reference, name[:tag][@digest].
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		if s != "" {
			s += "@"
		}
		s += r.Digest.String()
	}
	return s
}

// NameOnly reports whether r has neither tag nor digest.
func (r Reference) NameOnly() bool { return r.Tag == "" && r.Digest == "" }

// WithDefaultTag is r with the tag "latest" when it has neither tag nor
// digest.
func (r Reference) WithDefaultTag() Reference {
	if r.NameOnly() {
		r.Tag = defaultTag
	}
	return r
}

// Familiar is r as Docker shows it: without docker.io, and without
// library/ for an official image.
func (r Reference) Familiar() Reference {
	if r.Domain != defaultDomain {
		return r
	}
	r.Domain = ""
	if rest, ok := strings.CutPrefix(r.Path, officialRepo); ok && !strings.Contains(rest, "/") {
		r.Path = rest
	}
	return r
}

// FamiliarName is the familiar repository name: "busybox",
// "example.com/app".
func (r Reference) FamiliarName() string { return r.Familiar().Name() }

// FamiliarString is the familiar whole reference: "busybox:latest".
func (r Reference) FamiliarString() string { return r.Familiar().String() }

// Parse reads a reference as written, without normalising it: "busybox"
// has no domain here.
func Parse(s string) (Reference, error) {
	r, ok := split(s)
	if !ok {
		if s == "" {
			return Reference{}, ErrNameEmpty
		}
		if _, ok := split(strings.ToLower(s)); ok {
			return Reference{}, ErrNameContainsUppercase
		}
		return Reference{}, ErrReferenceInvalidFormat
	}
	if len(r.Path) > maxPathLen {
		return Reference{}, ErrNameTooLong
	}
	if r.Digest != "" {
		d, err := digest.Parse(string(r.Digest))
		if err != nil {
			return Reference{}, err
		}
		r.Digest = d
	}
	return r, nil
}

// ParseNormalized reads a user's reference the way the docker CLI does:
// "busybox" is docker.io/library/busybox, "me/app" is docker.io/me/app,
// and a name with a registry keeps it. No tag is added (see
// WithDefaultTag). A 64-digit hex string is refused: it is an image ID.
func ParseNormalized(s string) (Reference, error) {
	if isIdentifier(s) {
		return Reference{}, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, rest := splitDomain(s)
	remote := rest
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		remote = rest[:i]
	}
	if strings.ToLower(remote) != remote {
		return Reference{}, fmt.Errorf("%w: repository name (%s) must be lowercase", ErrReferenceInvalidFormat, remote)
	}
	return Parse(domain + "/" + rest)
}

// ParseAny reads what `docker tag` accepts as its source: an image ID
// (64 hex digits), a digest, or a reference (normalised).
func ParseAny(s string) (Reference, error) {
	if isIdentifier(s) {
		return Reference{Digest: digest.Digest("sha256:" + s)}, nil
	}
	if d, err := digest.Parse(s); err == nil {
		return Reference{Digest: d}, nil
	}
	return ParseNormalized(s)
}

// FamiliarRepoTag splits a stored full reference into the REPOSITORY and
// TAG columns of `images` ("docker.io/library/busybox:latest" →
// "busybox", "latest"). A name that does not parse is returned as it is.
func FamiliarRepoTag(full string) (repo, tag string) {
	r, err := ParseNormalized(full)
	if err != nil {
		return full, ""
	}
	return r.FamiliarName(), r.Tag
}

// splitDomain separates a user's name into Docker's registry domain and
// the rest, as the docker CLI does: the first component is a registry
// when it has a dot or a colon, is "localhost", or has upper case (which
// a path may not); otherwise the name is on docker.io, under library/
// when it is a single component.
func splitDomain(name string) (domain, rest string) {
	first, after, ok := strings.Cut(name, "/")
	switch {
	case !ok:
		domain, rest = defaultDomain, name
	case first == "localhost":
		domain, rest = first, after
	case first == legacyDomain:
		domain, rest = defaultDomain, after
	case strings.ContainsAny(first, ".:"), strings.ToLower(first) != first:
		domain, rest = first, after
	default:
		domain, rest = defaultDomain, name
	}
	if domain == defaultDomain && !strings.Contains(rest, "/") {
		rest = officialRepo + rest
	}
	return domain, rest
}

// split matches s against the reference grammar and returns its parts,
// the digest unchecked.
func split(s string) (Reference, bool) {
	var r Reference
	nameTag, dgst, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		if !isDigest(dgst) {
			return r, false
		}
		r.Digest = digest.Digest(dgst)
	}
	// A colon followed by no slash ends the name: a domain's port is
	// always followed by the path.
	name := nameTag
	if i := strings.LastIndexByte(nameTag, ':'); i >= 0 && !strings.Contains(nameTag[i+1:], "/") {
		name, r.Tag = nameTag[:i], nameTag[i+1:]
		if !isTag(r.Tag) {
			return r, false
		}
	}
	// The first component is the domain when it can be one and the rest
	// is a path; otherwise the whole name is the path.
	if first, rest, ok := strings.Cut(name, "/"); ok && isDomain(first) && isPath(rest) {
		r.Domain, r.Path = first, rest
		return r, true
	}
	if !isPath(name) {
		return r, false
	}
	r.Path = name
	return r, true
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }

func isWord(c byte) bool { return isAlnum(c) || c == '_' }

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// isPath reports whether s is one or more path components joined by "/".
func isPath(s string) bool {
	for c := range strings.SplitSeq(s, "/") {
		if !isPathComponent(c) {
			return false
		}
	}
	return true
}

// isPathComponent reports whether s is runs of [a-z0-9] joined by ".",
// "_", "__" or one or more "-".
func isPathComponent(s string) bool {
	if s == "" || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); {
		if isLowerAlnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && !isLowerAlnum(s[j]) {
			j++
		}
		switch sep := s[i:j]; {
		case sep == ".", sep == "_", sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

// isDomain reports whether s is a host name or bracketed IPv6 address,
// with an optional numeric port.
func isDomain(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" && !allDigits(port[1:]) {
		return false
	}
	if strings.HasPrefix(host, "[") {
		inner := host[1 : len(host)-1]
		if inner == "" {
			return false
		}
		for i := 0; i < len(inner); i++ {
			if !isHex(inner[i]) && inner[i] != ':' {
				return false
			}
		}
		return true
	}
	for label := range strings.SplitSeq(host, ".") {
		if !isHostLabel(label) {
			return false
		}
	}
	return true
}

// isHostLabel reports whether s is letters, digits and inner dashes.
func isHostLabel(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isTag reports whether s is a word character then up to 127 word
// characters, dots and dashes.
func isTag(s string) bool {
	if s == "" || len(s) > maxTagLen || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDigest reports whether s has a digest's shape: an algorithm (letter
// runs joined by "-", "_", "+" or ".") and at least 32 hex digits.
func isDigest(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) < 32 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if !isHex(hex[i]) {
			return false
		}
	}
	return isAlgorithm(alg)
}

// isAlgorithm reports whether s is components of a letter and then
// letters or digits, joined by one of "-", "_", "+", ".".
func isAlgorithm(s string) bool {
	start := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			start = false
		case c >= '0' && c <= '9':
			if start {
				return false
			}
		case c == '-' || c == '_' || c == '+' || c == '.':
			if start {
				return false
			}
			start = true
		default:
			return false
		}
	}
	return !start
}

// isIdentifier reports whether s is 64 lowercase hex digits, an image ID.
func isIdentifier(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// ErrInvalid is wrapped by Invalid's errors: the user's name is not a
// valid reference.
var ErrInvalid = ErrReferenceInvalidFormat

// Invalid words a parse error of s as fusebox reports a bad image name,
// naming s: "invalid reference format: repository name (S) must be
// lowercase", or `invalid reference format: "s": <why>`.
func Invalid(s string, err error) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty name", ErrInvalid)
	case errors.Is(err, ErrNameContainsUppercase):
		return fmt.Errorf("%w: repository name (%s) must be lowercase", ErrInvalid, s)
	}
	return fmt.Errorf("%w: %q: %v", ErrInvalid, s, err)
}
