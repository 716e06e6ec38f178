package main

// The image is FROM scratch, with no /usr/share/zoneinfo: the embedded copy of the time zone
// database (about 450 KB) is what lets a rotationWindow name any IANA zone there.
import _ "time/tzdata"
