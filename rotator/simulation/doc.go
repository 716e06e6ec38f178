// Package simulation drives the real rotator through hundreds of simulated days against
// in-memory imitations of Secrets Manager, Login with Amazon, the SP-API rotate endpoint and SQS,
// with faults drawn from a seed, and checks the design's invariants at every step. Amazon is
// spapi/amazon's model, the one spapisim serves; the rest lives in the tests, and this file only
// names the package.
package simulation
