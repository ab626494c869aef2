"""Test support shared by the services' tests, tests/e2e and bench/ (not shipped in a service):
`images` (test images from Debian's busybox-static), `registry` (Debian's docker-registry on
loopback as an upstream), `tokens` (a Docker bearer-token server in front of it)."""
