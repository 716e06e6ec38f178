// Package moto starts and stops a local moto_server (SQS, Secrets Manager and KMS on one port),
// the AWS stand-in used by the sandbox and the integration tests. We deliberately do not write
// AWS fakes of our own for those paths.
package moto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Version is the moto release the project is tested with.
const Version = "5.2.1"

// Server is a running moto_server in its own process group.
type Server struct {
	URL string
	cmd *exec.Cmd
}

// Ensure returns the path of moto_server, installing moto with pip when it is missing. say is
// told when an install happens, so the user learns why the first start is slow.
func Ensure(ctx context.Context, say io.Writer) (string, error) {
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	fmt.Fprintf(say, "moto_server not found: installing moto[server]==%s with pip\n", Version)
	for _, py := range []string{"python3", "python"} {
		if _, err := exec.LookPath(py); err != nil {
			continue
		}
		cmd := exec.CommandContext(ctx, py, "-m", "pip", "install", "--quiet", "moto[server]=="+Version)
		cmd.Stdout, cmd.Stderr = say, say
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("installing moto with %s -m pip: %w", py, err)
		}
		if p, err := exec.LookPath("moto_server"); err == nil {
			return p, nil
		}
	}
	return "", errors.New("moto_server is not installed and pip could not install it: run `pip install 'moto[server]==" + Version + "'`")
}

// Start runs moto_server on a free loopback port and waits until it answers. logs receives its
// output (nil discards it).
func Start(ctx context.Context, logs io.Writer) (*Server, error) {
	bin, err := Ensure(ctx, os.Stderr)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if logs == nil {
		logs = io.Discard
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = motoEnv(os.Environ())
	// Its own process group, so Stop also ends the werkzeug children it may fork.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto_server: %w", err)
	}
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/moto-api/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for moto_server at %s: %w", s.URL, ctx.Err())
		case <-tick.C:
		}
	}
}

// Reset clears every resource moto holds.
func (s *Server) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("resetting moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("resetting moto: status %d", resp.StatusCode)
	}
	return nil
}

// Stop kills the whole process group and waits for it.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// motoEnv keeps the caller's AWS profile and credentials away from moto, which otherwise tries
// to load a profile that may not exist and answers every call with a 500.
func motoEnv(env []string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return append(out, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_DEFAULT_REGION=us-east-1")
}
