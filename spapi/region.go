// Package spapi talks to Login with Amazon (the client_credentials grant that proves a client
// secret works) and to the SP-API Application Management API (the call that asks Amazon to
// rotate a client secret). It knows nothing about queues or the vault.
package spapi

import "fmt"

// Scope is the grantless scope of the rotate call. Singular "credential": the plural is a typo
// that LWA rejects with invalid_scope.
const Scope = "sellingpartnerapi::client_credential:rotation"

// DefaultLWAEndpoint is the production LWA token endpoint.
const DefaultLWAEndpoint = "https://api.amazon.com/auth/o2/token"

// Region is an SP-API selling region.
type Region string

// The three SP-API regions. The sandbox hosts cannot rotate, so they have no Region.
const (
	RegionNA Region = "na"
	RegionEU Region = "eu"
	RegionFE Region = "fe"
)

// Validate reports whether r is one of na, eu or fe.
func (r Region) Validate() error {
	switch r {
	case RegionNA, RegionEU, RegionFE:
		return nil
	}
	return fmt.Errorf("unknown SP-API region %q (want na, eu or fe)", string(r))
}

// DefaultEndpoint returns the production SP-API host of a region.
func DefaultEndpoint(r Region) (string, error) {
	if err := r.Validate(); err != nil {
		return "", err
	}
	return "https://sellingpartnerapi-" + string(r) + ".amazon.com", nil
}
