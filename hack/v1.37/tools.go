//go:build tools

// Package hack records the upstream commands `make binaries` builds, so `go mod tidy` keeps
// every module they need in go.mod and go.sum. Nothing here is compiled into berth.
package hack

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
)
