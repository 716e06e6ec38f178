package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The client for LWA and SP-API must verify certificates and refuse anything older than TLS 1.2.
func TestHardenedClientTLS(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	tests := []struct {
		name    string
		maxTLS  uint16
		trusted bool
		wantErr string
	}{
		{"TLS 1.2 with a trusted certificate", tls.VersionTLS12, true, ""},
		{"TLS 1.3 with a trusted certificate", tls.VersionTLS13, true, ""},
		{"TLS 1.1 refused", tls.VersionTLS11, true, "protocol version"},
		{"untrusted certificate refused", tls.VersionTLS13, false, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(ok)
			srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tc.maxTLS}
			srv.StartTLS()
			defer srv.Close()
			c := hardenedHTTPClient()
			tr := c.Transport.(*http.Transport)
			if tc.trusted {
				pool := x509.NewCertPool()
				pool.AddCert(srv.Certificate())
				tr.TLSClientConfig.RootCAs = pool
			}
			resp, err := c.Get(srv.URL)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("the connection succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
	if c := hardenedHTTPClient(); c.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify {
		t.Fatal("certificate verification is off")
	}
}
