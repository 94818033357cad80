package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/fusebox/fusebox/image/imageref"
)

// commitQuery is the query of POST /commit: the container, the new name
// split into repo and tag (a digest refused, "latest" for no tag), and
// the options.
func commitQuery(id string, opts ContainerCommitOptions) (url.Values, error) {
	id, err := checkID("container", id)
	if err != nil {
		return nil, err
	}
	q := commitOptions(id, opts)
	if opts.Reference != "" {
		r, err := imageref.ParseNormalized(opts.Reference)
		if err != nil {
			return nil, err
		}
		if r.Digest != "" {
			return nil, errors.New("refusing to create a tag with a digest reference")
		}
		q.Set("repo", r.Name())
		q.Set("tag", r.WithDefaultTag().Tag)
	}
	return q, nil
}

// commitOptions is the query of POST /commit but the new name.
func commitOptions(id string, opts ContainerCommitOptions) url.Values {
	q := url.Values{"container": {id}}
	if opts.Comment != "" {
		q.Set("comment", opts.Comment)
	}
	if opts.Author != "" {
		q.Set("author", opts.Author)
	}
	for _, ch := range opts.Changes {
		q.Add("changes", ch)
	}
	if opts.NoPause {
		q.Set("pause", "0")
	}
	return q
}

// CommitStream commits a container as ContainerCommit does, but asks the
// daemon for its progress: the answer is Docker's JSON message stream
// ("Committing layer" with bytes done and to do, while the layer is
// stored), ending with a message whose aux holds {"ID": "sha256:…"}. It is
// fusebox's extension of POST /commit (progress=1), for a CLI that draws a
// bar while a big change is committed; errors found before any work is
// done come back as the usual error answer. The new name goes to the
// daemon as it is given, which checks it.
func (c *Client) CommitStream(ctx context.Context, container string, opts ContainerCommitOptions) (io.ReadCloser, error) {
	q := commitOptions(container, opts)
	if opts.Reference != "" {
		q.Set("repo", opts.Reference)
	}
	q.Set("progress", "1")
	return c.stream(ctx, request{method: http.MethodPost, path: "/commit", query: q})
}
