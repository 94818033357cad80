package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	ocispec "github.com/moby/docker-image-spec/specs-go/v1"
)

// ErrBadChange is returned for a --change instruction that cannot be applied.
var ErrBadChange = errors.New("invalid change")

// ApplyChanges applies Dockerfile instructions given with `import -c` or
// `commit -c` to cfg, in order. The allowed instructions are those Docker
// allows there: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
// VOLUME and WORKDIR, each in JSON or shell form where Dockerfiles allow both.
func ApplyChanges(cfg *ocispec.DockerOCIImageConfig, changes []string) error {
	for _, c := range changes {
		if err := applyChange(cfg, c); err != nil {
			return err
		}
	}
	return nil
}

func applyChange(cfg *ocispec.DockerOCIImageConfig, change string) error {
	change = strings.TrimSpace(change)
	instr, rest, _ := strings.Cut(change, " ")
	rest = strings.TrimSpace(rest)
	name := strings.ToUpper(instr)
	if instr == "" {
		return fmt.Errorf("%w: empty change", ErrBadChange)
	}
	needArg := func() error {
		if rest == "" {
			return fmt.Errorf("%w: %s requires at least one argument", ErrBadChange, name)
		}
		return nil
	}
	switch name {
	case "CMD":
		if err := needArg(); err != nil {
			return err
		}
		cfg.Cmd = commandForm(rest, true)
	case "ENTRYPOINT":
		if err := needArg(); err != nil {
			return err
		}
		cfg.Entrypoint = commandForm(rest, true)
	case "ENV":
		kvs, err := keyValues(name, rest)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		kvs, err := keyValues(name, rest)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range kvs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if err := needArg(); err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			port, proto, ok := strings.Cut(p, "/")
			if !ok {
				proto = "tcp"
			}
			if !validPort(port) || (proto != "tcp" && proto != "udp" && proto != "sctp") {
				return fmt.Errorf("%w: invalid containerPort: %s", ErrBadChange, p)
			}
			cfg.ExposedPorts[port+"/"+proto] = struct{}{}
		}
	case "VOLUME":
		if err := needArg(); err != nil {
			return err
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range commandForm(rest, false) {
			if v == "" {
				return fmt.Errorf("%w: VOLUME specified can not be an empty string", ErrBadChange)
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "WORKDIR":
		if err := needArg(); err != nil {
			return err
		}
		dir := rest
		if !path.IsAbs(dir) {
			base := cfg.WorkingDir
			if base == "" {
				base = "/"
			}
			dir = path.Join(base, dir)
		}
		cfg.WorkingDir = path.Clean(dir)
	case "USER":
		if err := needArg(); err != nil {
			return err
		}
		cfg.User = rest
	case "STOPSIGNAL":
		if err := needArg(); err != nil {
			return err
		}
		cfg.StopSignal = rest
	default:
		return fmt.Errorf("%w: %s is not a valid change command", ErrBadChange, instr)
	}
	return nil
}

// commandForm parses a JSON array ("exec form"); anything else is the
// shell form, wrapped in /bin/sh -c when shell is set, split on blanks
// otherwise (VOLUME /a /b).
func commandForm(s string, shell bool) []string {
	if strings.HasPrefix(s, "[") {
		var args []string
		if err := json.Unmarshal([]byte(s), &args); err == nil {
			return args
		}
	}
	if shell {
		return []string{"/bin/sh", "-c", s}
	}
	return strings.Fields(s)
}

// keyValues parses "k=v k2=\"v 2\"" or the legacy one-pair form "k v".
func keyValues(name, s string) ([][2]string, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: %s requires at least one argument", ErrBadChange, name)
	}
	words, err := splitWords(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadChange, name, err)
	}
	if !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, fmt.Errorf("%w: %s must have two arguments", ErrBadChange, name)
		}
		return [][2]string{{k, unquote(v)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %s names can not be blank: %q", ErrBadChange, name, w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on blanks outside double or single quotes and removes
// the quotes, with backslash escapes inside double quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == '"' && c == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
		case quote != 0:
			cur.WriteRune(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func unquote(s string) string {
	if w, err := splitWords(s); err == nil && len(w) == 1 {
		return w[0]
	}
	return s
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func validPort(p string) bool {
	lo, hi, isRange := strings.Cut(p, "-")
	ok := func(s string) bool {
		if s == "" || len(s) > 5 {
			return false
		}
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
			n = n*10 + int(c-'0')
		}
		return n <= 65535
	}
	return ok(lo) && (!isRange || ok(hi))
}
