package spapisim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const ctlClient = "amzn1.application-oa2-client.ctl"

// TestControlAPI drives one scenario through the JSON API only, step by step, as a harness in
// another language would.
func TestControlAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctlSecret := "amzn1.oa2-cs.v1.control000000000000000000000000000"
	fp := spapisim.Fingerprint(secret.New(ctlSecret))
	register := `{"clientId":"` + ctlClient + `","clientSecret":"` + ctlSecret + `","applicationId":"amzn1.sp.solution.ctl",
		"secretExpiresAt":"2025-03-31T12:00:00Z","expiryQueueUrl":"` + expiryQ + `","newSecretQueueUrl":"` + newSecretQ + `"}`
	var notificationID string

	steps := []struct {
		name, method, path, body string
		wantStatus               int
		wantIn                   []string
		after                    func(t *testing.T, body string)
	}{
		{"register", "POST", "/control/applications", register, 201,
			[]string{`"fingerprint":"` + fp + `"`, `"expiresAt":"2025-03-31T12:00:00Z"`, `"valid":true`, `"rotateCalls":0`}, nil},
		{"register twice", "POST", "/control/applications", register, 400, []string{"already registered"}, nil},
		{"register without secret", "POST", "/control/applications", `{"clientId":"x"}`, 400, []string{"required"}, nil},
		{"register with unknown field", "POST", "/control/applications", `{"clientId":"x","secret":"` + ctlSecret + `"}`, 400, []string{"malformed"}, nil},
		{"unknown application", "GET", "/control/applications/nobody", "", 404, []string{"unknown client id"}, nil},
		{"bad fault target", "POST", "/control/faults", `{"target":"tokens"}`, 400, []string{"want token, rotate or delivery"}, nil},
		{"bad fault delay", "POST", "/control/faults", `{"target":"token","delay":"soon"}`, 400, []string{"fault delay"}, nil},
		{"misspelt fault knob", "POST", "/control/faults", `{"target":"delivery","dorp":true}`, 400, []string{"dorp"}, nil},
		{"token fault", "POST", "/control/faults", `{"target":"token","status":503,"count":1}`, 204, nil, func(t *testing.T, _ string) {
			_, err := e.lwa.Token(context.Background(), ctlClient, secret.New(ctlSecret))
			if !errors.Is(err, spapi.ErrTransient) {
				t.Errorf("token after a 503 fault: %v", err)
			}
		}},
		{"reorder fault", "POST", "/control/faults", `{"target":"delivery","reorder":true}`, 204, nil, nil},
		{"expiry notice held", "POST", "/control/expiry-notices", `{"clientId":"` + ctlClient + `","expiresAt":"2025-03-30T00:00:00Z"}`, 200,
			[]string{`"notificationId":"`}, func(t *testing.T, body string) {
				var out struct{ NotificationID string }
				_ = json.Unmarshal([]byte(body), &out)
				notificationID = out.NotificationID
				if n := len(e.dlv.all()); n != 0 {
					t.Errorf("%d deliveries, want the notice held", n)
				}
			}},
		{"expiry notice for nobody", "POST", "/control/expiry-notices", `{"clientId":"nobody"}`, 404, nil, nil},
		{"flush", "POST", "/control/flush", "", 204, nil, func(t *testing.T, _ string) {
			if got := ids(t, e.dlv.all()); len(got) != 1 || got[0] != notificationID {
				t.Errorf("delivered %v, want [%s]", got, notificationID)
			}
		}},
		{"notifications", "GET", "/control/notifications", "", 200,
			[]string{`"type":"APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY"`, `"state":"delivered"`, `"sent":1`}, func(t *testing.T, _ string) {
				rotateCtl(t, e, ctlSecret)
			}},
		{"application after rotation", "GET", "/control/applications/" + ctlClient, "", 200,
			[]string{`"rotateCalls":1`, `"fingerprint":"` + fp + `"`, `"expiresAt":"2025-03-08T12:00:00Z"`}, func(t *testing.T, body string) {
				var v struct {
					Secrets []struct{ Fingerprint string }
				}
				_ = json.Unmarshal([]byte(body), &v)
				newSec, _, _ := e.sim.Newest(ctlClient)
				if len(v.Secrets) != 2 || v.Secrets[1].Fingerprint != spapisim.Fingerprint(newSec) {
					t.Errorf("secrets = %+v", v.Secrets)
				}
			}},
		{"requests", "GET", "/control/requests", "", 200,
			[]string{`"endpoint":"token","clientId":"` + ctlClient + `","status":503`, `"endpoint":"rotate","clientId":"` + ctlClient + `","status":204`}, nil},
	}
	for _, st := range steps {
		resp, body := do(t, e, st.method, st.path, st.body)
		if resp.StatusCode != st.wantStatus {
			t.Fatalf("%s: status %d (%s), want %d", st.name, resp.StatusCode, body, st.wantStatus)
		}
		if resp.Header.Get("x-amzn-RequestId") == "" {
			t.Errorf("%s: no x-amzn-RequestId", st.name)
		}
		for _, w := range st.wantIn {
			if !strings.Contains(body, w) {
				t.Errorf("%s: body %s lacks %s", st.name, body, w)
			}
		}
		newSec, _, _ := e.sim.Newest(ctlClient)
		for _, s := range []string{ctlSecret, newSec.Reveal()} {
			if s != "" && strings.Contains(body, s) {
				t.Errorf("%s: control API shows a secret value", st.name)
			}
		}
		if st.after != nil {
			st.after(t, body)
		}
	}
}

func rotateCtl(t *testing.T, e *env, sec string) {
	t.Helper()
	tok, err := e.lwa.Token(context.Background(), ctlClient, secret.New(sec))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app().RotateClientSecret(context.Background(), ctlClient, spapi.RegionNA, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, e *env, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
