package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	moby "github.com/moby/moby/client"
)

// CommitStream commits a container as ContainerCommit does, but asks the
// daemon for its progress: the answer is Docker's JSON message stream
// ("Committing layer" with bytes done and to do, while the layer is
// stored), ending with a message whose aux holds {"ID": "sha256:…"}. It is
// fusebox's extension of POST /commit (progress=1), for a CLI that draws a
// bar while a big change is committed; errors found before any work is
// done come back as the usual error answer.
func (c *Client) CommitStream(ctx context.Context, container string, opts moby.ContainerCommitOptions) (io.ReadCloser, error) {
	q := url.Values{"container": {container}, "progress": {"1"}}
	if opts.Reference != "" {
		q.Set("repo", opts.Reference)
	}
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
	resp, err := c.do(ctx, http.MethodPost, "/commit?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
