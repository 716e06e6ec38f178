package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const doctorTestConfig = `kmsKeyId: alias/lwa
queues: {expiry: https://sqs.us-east-1.amazonaws.com/111122223333/lwa-expiry, newSecret: https://sqs.us-east-1.amazonaws.com/111122223333/lwa-new-secret}
applications:
  - {name: main-app, clientId: amzn1.application-oa2-client.0123, region: na, secretId: lwa/main-app}
`

// The doctor command refuses before any AWS call when the flags, the file or the transport are
// wrong; the checks themselves are tested in internal/operator/doctor and integration/.
func TestDoctorCommandRefusals(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(doctorTestConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      string // AWS_ENDPOINT_URL
		usage    bool
		contains string
	}{
		{name: "unknown flag", args: []string{"doctor", "--bogus"}, usage: true},
		{name: "missing file", args: []string{"doctor", "--config", filepath.Join(t.TempDir(), "none.yaml")}, contains: "reading config"},
		{name: "plain-http AWS endpoint", args: []string{"doctor", "--config", cfg}, env: "http://aws.example.com", contains: "AWS_ENDPOINT_URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL", tc.env)
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errOut)
			if err == nil {
				t.Fatal("doctor succeeded")
			}
			if errors.Is(err, errUsage) != tc.usage {
				t.Errorf("err = %v, usage error: %v", err, tc.usage)
			}
			if tc.contains != "" && !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %v, want it to mention %q", err, tc.contains)
			}
			if errors.Is(err, errChecksFailed) || out.Len() > 0 {
				t.Errorf("doctor ran its checks: %v\n%s", err, out.String())
			}
		})
	}
}
