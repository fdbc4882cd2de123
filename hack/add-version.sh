#!/usr/bin/env bash
# Adds (or refreshes) the Go module that builds one Kubernetes release: hack/v1.MINOR/ with a
# go.mod that points every staging module k8s.io/kubernetes replaces locally at the published
# v0.MINOR.PATCH tag, the etcd server that release pins, and `go mod tidy`'s go.sum.
# Usage: hack/add-version.sh v1.37.2    (then add it to SUPPORTED in scheduler/harness/binaries.py)
set -euo pipefail
v=${1:?usage: hack/add-version.sh vMAJOR.MINOR.PATCH}
here=$(cd "$(dirname "$0")" && pwd)
minor=${v#v1.}; minor=${minor%%.*}
dir="$here/v1.$minor"; staging=v0.${v#v1.}
mkdir -p "$dir/etcd"
upstream=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' "$upstream")
{
  echo "// Builds the Kubernetes $v control plane that berth's tests, demo and benchmarks run against."
  echo "// k8s.io/kubernetes pins its staging modules at v0.0.0 with local replace lines, so a consumer"
  echo "// module must point every one of them at the published tag of the same release."
  echo "// Written by hack/add-version.sh."
  echo "module github.com/berth-scheduler/berth/hack/v1.$minor"
  echo
  grep '^go ' "$upstream"
  echo
  echo "require ("
  echo "	go.etcd.io/etcd/server/v3 $etcd"
  echo "	k8s.io/kubectl v0.0.0"
  echo "	k8s.io/kubernetes $v"
  echo ")"
  echo
  echo "replace ("
  awk -v s="$staging" '$2 == "=>" && $3 ~ /^\.\/staging/ {print "\t" $1 " => " $1 " " s}' "$upstream"
  echo ")"
} > "$dir/go.mod"
cat > "$dir/tools.go" <<EOF
//go:build tools

// Package hack records the upstream commands \`make binaries\` builds, so \`go mod tidy\` keeps
// every module they need in go.mod and go.sum. Nothing here is compiled into berth.
package hack

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
)
EOF
cat > "$dir/etcd/main.go" <<EOF
// Command etcd is upstream etcd's server entry point, built at the etcd version that
// k8s.io/kubernetes $v itself pins ($etcd), so the test control plane gets a matching etcd
// without a separate download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
(cd "$dir" && go mod tidy)
echo "hack/v1.$minor: Kubernetes $v, etcd $etcd"
