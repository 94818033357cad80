package imageref

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// inputs are references valid and not, for comparing the parser with
// distribution/reference, whose grammar it must accept exactly.
var inputs = []string{
	"", "busybox", "busybox:latest", "busybox:1.36.1-musl", "library/busybox", "docker.io/library/busybox",
	"index.docker.io/busybox", "index.docker.io/library/busybox:1", "me/app", "me/app/sub:tag",
	"localhost/app", "localhost:5000/app:v1", "127.0.0.1:5000/a/b", "example.com/app", "Example.com/app",
	"EXAMPLE/app", "example.com:443/app@sha256:" + strings.Repeat("a", 64),
	"app@sha256:" + strings.Repeat("b", 64), "app:v1@sha256:" + strings.Repeat("c", 64),
	"app@sha256:" + strings.Repeat("b", 63), "app@sha256:" + strings.Repeat("B", 64), "app@sha512:" + strings.Repeat("d", 128),
	"app@md5:" + strings.Repeat("e", 32), "app@sha256+b64:" + strings.Repeat("f", 64), "app@1sha:" + strings.Repeat("f", 64),
	"app@sha256:short", "app@", "@sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("a", 64),
	strings.Repeat("a", 64), strings.Repeat("A", 64), strings.Repeat("a", 63), strings.Repeat("a", 65),
	"Busybox", "busyBox:latest", "busybox:Latest", "busybox:LATEST", "me/App", "a/B/c", "UPPER",
	"a.b", "a..b", "a_b", "a__b", "a___b", "a-b", "a--b", "a-----b", "a._b", "-a", "a-", "_a", "a_", ".a", "a.",
	"a/b/", "/a", "a//b", "a:b:c", "a:", ":a", "a:-b", "a:.b", "a:_b", "a:b.c-d_e", "a:" + strings.Repeat("t", 128),
	"a:" + strings.Repeat("t", 129), "a b", "a\tb", "a$b", "a@b@c", "héllo", "a/b:c/d",
	"[::1]:5000/app", "[::1]/app", "[::1", "[]/app", "[::g]/app", "[2001:db8::1]:80/x/y:z",
	"host:port/app", "host:80x/app", "host:/app", "-host.com/app", "host-.com/app", "ho-st.com/app",
	"a__b.c/x", "foo_bar/baz", "foo..com/bar", "x.y.z.example.com:1/a-b/c.d/e__f:g",
	strings.Repeat("a", 255), strings.Repeat("a", 256), "docker.io/" + strings.Repeat("b", 250),
	"registry.example.com/" + strings.Repeat("c/", 120) + "c", "library/" + strings.Repeat("d", 250),
	"localhost", "localhost:5000", "localhost:5000/", "LOCALHOST/app", "a/b@sha256:" + strings.Repeat("0", 64),
}

// sameErrors reports whether both parsers failed alike on in (both not,
// or both with the same text), and says how they differ when not.
func sameErrors(t *testing.T, in string, got, want error) bool {
	t.Helper()
	switch {
	case (got == nil) != (want == nil):
		t.Errorf("%q: error %v, distribution says %v", in, got, want)
		return false
	case got != nil && got.Error() != want.Error():
		t.Errorf("%q: error %q, distribution says %q", in, got, want)
		return false
	}
	return true
}

// TestAgreesWithDistribution checks ParseNormalized against
// distribution/reference's ParseNormalizedNamed on every input: both
// accept or refuse it, with the same error text, and agree on the parts,
// the string forms and the default tag.
func TestAgreesWithDistribution(t *testing.T) {
	for _, in := range inputs {
		want, werr := reference.ParseNormalizedNamed(in)
		got, gerr := ParseNormalized(in)
		if !sameErrors(t, in, gerr, werr) || werr != nil {
			continue
		}
		checks := []struct{ what, got, want string }{
			{"Name", got.Name(), want.Name()},
			{"String", got.String(), want.String()},
			{"Domain", got.Domain, reference.Domain(want)},
			{"Path", got.Path, reference.Path(want)},
			{"FamiliarName", got.FamiliarName(), reference.FamiliarName(want)},
			{"FamiliarString", got.FamiliarString(), reference.FamiliarString(want)},
			{"WithDefaultTag", got.WithDefaultTag().String(), reference.TagNameOnly(want).String()},
		}
		if got.NameOnly() != reference.IsNameOnly(want) {
			t.Errorf("%q: NameOnly %v", in, got.NameOnly())
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%q: %s = %q, distribution says %q", in, c.what, c.got, c.want)
			}
		}
	}
}

// TestParseAgreesWithDistribution compares the unnormalised Parse, whose
// errors (upper case, too long, bad digest) ParseNormalized passes on.
func TestParseAgreesWithDistribution(t *testing.T) {
	for _, in := range inputs {
		want, werr := reference.Parse(in)
		got, gerr := Parse(in)
		if !sameErrors(t, in, gerr, werr) || werr != nil {
			continue
		}
		if got.String() != want.String() {
			t.Errorf("%q: String = %q, distribution says %q", in, got.String(), want.String())
		}
	}
}

func TestParseAnyAgreesWithDistribution(t *testing.T) {
	for _, in := range inputs {
		want, werr := reference.ParseAnyReference(in)
		got, gerr := ParseAny(in)
		if (werr == nil) != (gerr == nil) {
			t.Errorf("%q: error %v, distribution says %v", in, gerr, werr)
			continue
		}
		if werr == nil && got.String() != want.String() {
			t.Errorf("%q: String = %q, distribution says %q", in, got.String(), want.String())
		}
	}
}

func TestFamiliarRepoTag(t *testing.T) {
	for _, c := range []struct{ in, repo, tag string }{
		{"docker.io/library/busybox:latest", "busybox", "latest"},
		{"docker.io/me/app:v1", "me/app", "v1"},
		{"localhost:5000/app:v2", "localhost:5000/app", "v2"},
		{"example.com/app", "example.com/app", ""},
		{"Not A Ref", "Not A Ref", ""},
	} {
		repo, tag := FamiliarRepoTag(c.in)
		if repo != c.repo || tag != c.tag {
			t.Errorf("FamiliarRepoTag(%q) = %q, %q; want %q, %q", c.in, repo, tag, c.repo, c.tag)
		}
	}
}

// TestRandomAgreesWithDistribution compares both parsers on strings built
// from the grammar's pieces, which reach corners a hand-made list misses.
func TestRandomAgreesWithDistribution(t *testing.T) {
	pieces := []string{"a", "b", "Z", "0", "9", ".", "..", "_", "__", "-", "--", ":", "/", "@", "[", "]", "::1",
		"localhost", "docker.io", "library", "sha256:" + strings.Repeat("a", 64), "5000", "latest", " "}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50000 {
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		in := b.String()
		want, werr := reference.ParseNormalizedNamed(in)
		got, gerr := ParseNormalized(in)
		switch {
		case (werr == nil) != (gerr == nil):
			t.Fatalf("%q: error %v, distribution says %v", in, gerr, werr)
		case werr != nil && werr.Error() != gerr.Error():
			t.Fatalf("%q: error %q, distribution says %q", in, gerr, werr)
		case werr == nil && (want.String() != got.String() || reference.FamiliarString(want) != got.FamiliarString()):
			t.Fatalf("%q: %q (%q), distribution says %q", in, got, got.FamiliarString(), want)
		}
	}
}
