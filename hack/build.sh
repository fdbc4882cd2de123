#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-scheduler, kubectl, kwok) once into a
# cache outside the repo and does nothing when every binary is already there.
# Usage: hack/build.sh [BIN_DIR]   (default: $BERTH_BIN_DIR or ~/.cache/berth/k8s-$K8S_VERSION/bin)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=$(grep -oE '^[[:space:]]*(require[[:space:]]+)?k8s\.io/kubernetes v[0-9][^[:space:]]*' "$here/go.mod" | awk '{print $NF}' | head -n 1)
[ -n "$K8S_VERSION" ] || { echo "hack/build.sh: cannot find k8s.io/kubernetes in go.mod" >&2; exit 1; }
bin=${1:-${BERTH_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/k8s-$K8S_VERSION/bin}}
mkdir -p "$bin"

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

build() {  # build NAME PACKAGE [MODULE_DIR]
  local name=$1 pkg=$2 dir=${3:-$here}
  if [ -x "$bin/$name" ]; then
    echo "have  $bin/$name"
    return
  fi
  echo "build $name ($pkg) ..."
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "built $name in $((SECONDS - start))s"
}

build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build etcd ./etcd
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubectl k8s.io/kubernetes/cmd/kubectl
build kwok sigs.k8s.io/kwok/cmd/kwok "$here/kwok"
build helm helm.sh/helm/v3/cmd/helm "$here/helm"
echo "binaries in $bin"
