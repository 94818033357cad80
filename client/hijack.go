package client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
)

// HijackedResponse is the raw connection of an attach or an exec start
// once the daemon has answered 101: Reader yields what the daemon sends
// (Docker's multiplexed stream, or raw bytes with a tty), writes to Conn
// go to the process's stdin.
type HijackedResponse struct {
	Conn   net.Conn
	Reader *bufio.Reader
}

// Close closes the connection.
func (h *HijackedResponse) Close() { h.Conn.Close() }

// CloseWrite half-closes the connection, which the daemon reads as the
// end of stdin; the output can still be read.
func (h *HijackedResponse) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// hijack sends r on a connection of its own with Docker's upgrade headers
// and, once the daemon answers 101, hands the connection over. The reader
// keeps whatever the daemon sent right after its answer.
func (c *Client) hijack(ctx context.Context, r request) (HijackedResponse, error) {
	req, err := c.build(ctx, r)
	if err != nil {
		return HijackedResponse{}, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	conn, err := c.first.dial(ctx, c.sock)
	if err != nil {
		return HijackedResponse{}, c.unreachable(err)
	}
	// The request and its answer are bounded by ctx; the stream after
	// them is not, as Docker's is not.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	br := bufio.NewReader(conn)
	err = c.upgrade(conn, br, req)
	if !stop() {
		conn.Close()
		return HijackedResponse{}, ctx.Err()
	}
	if err != nil {
		conn.Close()
		return HijackedResponse{}, err
	}
	return HijackedResponse{Conn: conn, Reader: br}, nil
}

// upgrade writes req on conn and reads the daemon's answer from br.
func (c *Client) upgrade(conn net.Conn, br *bufio.Reader, req *http.Request) error {
	if err := req.Write(conn); err != nil {
		return c.unreachable(err)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fmt.Errorf("read daemon answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		if resp.StatusCode >= 400 {
			return responseError(resp)
		}
		return fmt.Errorf("unable to upgrade to tcp, received %d", resp.StatusCode)
	}
	return nil
}
