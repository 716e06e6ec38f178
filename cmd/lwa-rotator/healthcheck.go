package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/spapi-tools/lwa-rotator/config"
)

// errUnhealthy is any failed probe. Docker reserves exit code 2 for health checks, so even a
// flag mistake exits 1 here, never errUsage's 2.
var errUnhealthy = errors.New("unhealthy")

// cmdHealthcheck serves Docker HEALTHCHECK and the ECS container health check: the image has no
// shell or curl, so the binary probes its own /healthz. Exit 0 on 200, else 1.
func cmdHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPathFrom(getenv), "configuration file whose listen is probed (env LWA_ROTATOR_CONFIG); not read with --listen, --url or LWA_ROTATOR_LISTEN")
	listen := fs.String("listen", "", "HOST:PORT of the daemon's listener (default LWA_ROTATOR_LISTEN, then the file's listen); a wildcard host means loopback")
	rawURL := fs.String("url", "", "probe this http(s) URL instead of http://LISTEN/healthz")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("healthcheck: %w: bad flags", errUnhealthy)
	}
	target, err := healthTarget(*rawURL, *listen, *cfgPath, getenv)
	if err != nil {
		return fmt.Errorf("healthcheck: %w: %w", errUnhealthy, err)
	}
	if err := probe(ctx, target, *timeout); err != nil {
		return fmt.Errorf("healthcheck %s: %w: %w", target.Redacted(), errUnhealthy, err)
	}
	fmt.Fprintf(stdout, "healthy: %s answered 200\n", target.Redacted())
	return nil
}

// healthTarget picks the URL: --url, else http://ADDR/healthz with ADDR from --listen, the
// environment or the configuration file, in that order.
func healthTarget(rawURL, listen, cfgPath string, getenv func(string) string) (*url.URL, error) {
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("--url is not an http(s) URL with a host")
		}
		return u, nil
	}
	if listen == "" {
		var err error
		if listen, err = config.ListenAddress(cfgPath, getenv); err != nil {
			return nil, fmt.Errorf("finding the listen address (or pass --listen): %w", err)
		}
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, errors.New("the listen address is not HOST:PORT")
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(dialHost(host), port), Path: "/healthz"}, nil
}

// dialHost turns a bind-everything host into the loopback address of the same family: the daemon
// listening on 0.0.0.0 or [::] answers there, and a wildcard is not an address one can dial.
func dialHost(host string) string {
	if host == "" {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	return host
}

func probe(ctx context.Context, target *url.URL, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		// The probe is local: a proxy from the task's environment must not carry it elsewhere.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		// A redirect is not the daemon answering.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the URL the caller already names; keep the cause (dial, timeout).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d, want 200", resp.StatusCode)
	}
	return nil
}
