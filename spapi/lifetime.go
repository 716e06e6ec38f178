package spapi

import "time"

// SecretLifetime is how long Amazon's LWA client secrets live (the Application Management API
// documentation: 180 days). The rotator dates a secret's minting by it, the simulator mints with
// it: one constant, so the two cannot drift apart.
const SecretLifetime = 180 * 24 * time.Hour

// OldSecretGrace is how long the secret a rotate call was made with keeps working after the call
// (oldClientSecretExpiryTime in the new-secret notification: 7 days in every published example).
const OldSecretGrace = 7 * 24 * time.Hour
