package spapisim

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The control API lets a harness in any language drive a scenario; README.md documents it.
// It never shows a secret value, only fingerprints.

const maxControlBody = 64 << 10

func (s *Sim) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /control/applications", s.ctlRegister)
	mux.HandleFunc("GET /control/applications/{clientId}", s.ctlApplication)
	mux.HandleFunc("POST /control/expiry-notices", s.ctlExpiryNotice)
	mux.HandleFunc("POST /control/faults", s.ctlFault)
	mux.HandleFunc("GET /control/requests", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.Received()))
	})
	mux.HandleFunc("GET /control/notifications", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.Notifications()))
	})
	mux.HandleFunc("POST /control/flush", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Flush(r.Context()); err != nil {
			ctlError(w, http.StatusBadGateway, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func ctlError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decode reads a JSON body. Only bodies that cannot hold a secret (quote=true) have the
// decoder's message repeated: it can quote the input.
func decode(w http.ResponseWriter, r *http.Request, v any, quote bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if !quote {
			err = errors.New("malformed JSON body or unknown field")
		}
		ctlError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

type appJSON struct {
	ClientID          string       `json:"clientId"`
	ClientSecret      secret.Value `json:"clientSecret"`
	ApplicationID     string       `json:"applicationId"`
	SecretExpiresAt   time.Time    `json:"secretExpiresAt"`
	ExpiryQueueURL    string       `json:"expiryQueueUrl"`
	NewSecretQueueURL string       `json:"newSecretQueueUrl"`
}

func (s *Sim) ctlRegister(w http.ResponseWriter, r *http.Request) {
	var in appJSON
	if !decode(w, r, &in, false) {
		return
	}
	err := s.Register(App{
		ClientID: in.ClientID, ApplicationID: in.ApplicationID, Secret: in.ClientSecret,
		SecretExpiresAt: in.SecretExpiresAt, ExpiryQueueURL: in.ExpiryQueueURL, NewSecretQueueURL: in.NewSecretQueueURL,
	})
	if err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	s.ctlShow(w, in.ClientID, http.StatusCreated)
}

func (s *Sim) ctlApplication(w http.ResponseWriter, r *http.Request) {
	s.ctlShow(w, r.PathValue("clientId"), http.StatusOK)
}

type secretJSON struct {
	Fingerprint string    `json:"fingerprint"`
	ExpiresAt   time.Time `json:"expiresAt"`
	Valid       bool      `json:"valid"`
}

type appView struct {
	ClientID          string       `json:"clientId"`
	ApplicationID     string       `json:"applicationId"`
	ExpiryQueueURL    string       `json:"expiryQueueUrl"`
	NewSecretQueueURL string       `json:"newSecretQueueUrl"`
	RotateCalls       int          `json:"rotateCalls"`
	Secrets           []secretJSON `json:"secrets"`
}

func (s *Sim) ctlShow(w http.ResponseWriter, clientID string, status int) {
	s.mu.Lock()
	a, ok := s.model.State(clientID)
	now := s.clk.Now()
	s.mu.Unlock()
	if !ok {
		ctlError(w, http.StatusNotFound, errors.New("unknown client id"))
		return
	}
	v := appView{
		ClientID: a.ClientID, ApplicationID: a.ApplicationID, ExpiryQueueURL: a.ExpiryQueueURL,
		NewSecretQueueURL: a.NewSecretQueueURL, RotateCalls: a.RotateCalls,
	}
	for _, c := range a.Secrets {
		v.Secrets = append(v.Secrets, secretJSON{Fingerprint(c.Value), c.ExpiresAt, c.Valid(now)})
	}
	writeJSON(w, status, v)
}

func (s *Sim) ctlExpiryNotice(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ClientID  string    `json:"clientId"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if !decode(w, r, &in, true) {
		return
	}
	s.mu.Lock()
	_, known := s.model.State(in.ClientID)
	s.mu.Unlock()
	if !known {
		ctlError(w, http.StatusNotFound, errors.New("unknown client id"))
		return
	}
	id, err := s.SendExpiryNotice(r.Context(), in.ClientID, in.ExpiresAt)
	if err != nil && id == "" {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"notificationId": id, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"notificationId": id})
}

func (s *Sim) ctlFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if !decode(w, r, &f, true) {
		return
	}
	if err := f.Validate(); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	s.InjectFault(f)
	w.WriteHeader(http.StatusNoContent)
}
