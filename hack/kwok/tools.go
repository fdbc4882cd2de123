//go:build tools

// Package kwok records the KWOK command for `go mod tidy`; nothing here is compiled.
package kwok

import _ "sigs.k8s.io/kwok/pkg/kwok/cmd"
