package spapi

import "time"

// SecretLifetime is how long Amazon's LWA client secrets live (the Application Management API
// documentation: 180 days). The rotator dates a secret's minting by it, the simulator mints with
// it: one constant, so the two cannot drift apart.
const SecretLifetime = 180 * 24 * time.Hour
