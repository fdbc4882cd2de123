#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok, helm) once into a cache outside the repo and does nothing when every binary is
# already there.
#
# Usage: [K8S_VERSION=v1.35.4] hack/build.sh [BIN_DIR]
#   K8S_VERSION  a version with a module in hack/v1.MINOR/ (default: the newest one there);
#                "v1.35" picks that minor's pinned patch. A patch other than the pinned one is
#                refused: the module's go.sum pins exactly one release.
#   BIN_DIR      default: $BERTH_BIN_DIR or ~/.cache/berth/k8s-$K8S_VERSION/bin
# Prints "binaries in DIR" last; `hack/build.sh --print-version` prints the resolved version only.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pinned() {  # pinned DIR -> the k8s.io/kubernetes version its go.mod requires
  grep -oE '^[[:space:]]*(require[[:space:]]+)?k8s\.io/kubernetes v[0-9][^[:space:]]*' "$1/go.mod" | awk '{print $NF}' | head -n 1
}
newest=$(cd "$here" && ls -d v1.* | sort -t. -k2 -n | tail -n 1)
want=${K8S_VERSION:-$newest}
minor=${want#v}; minor=${minor#1.}; minor=${minor%%.*}
mod="$here/v1.$minor"
if [ ! -f "$mod/go.mod" ]; then
  echo "hack/build.sh: no module for Kubernetes $want; supported: $(cd "$here" && ls -d v1.* | tr '\n' ' ')" >&2
  exit 2
fi
K8S_VERSION=$(pinned "$mod")
case "$want" in
  v1.$minor | "$K8S_VERSION" | 1.$minor | "${K8S_VERSION#v}") ;;
  *) echo "hack/build.sh: hack/v1.$minor pins $K8S_VERSION, not $want (set K8S_VERSION=$K8S_VERSION)" >&2; exit 2 ;;
esac
if [ "${1:-}" = "--print-version" ]; then
  echo "$K8S_VERSION"
  exit 0
fi
bin=${1:-${BERTH_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/k8s-$K8S_VERSION/bin}}
mkdir -p "$bin"

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

build() {  # build NAME PACKAGE [MODULE_DIR]
  local name=$1 pkg=$2 dir=${3:-$mod}
  if [ -x "$bin/$name" ]; then
    echo "have  $bin/$name"
    return
  fi
  echo "build $name ($pkg, Kubernetes $K8S_VERSION) ..."
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "built $name in $((SECONDS - start))s"
}

total=$SECONDS
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build etcd ./etcd
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubectl k8s.io/kubernetes/cmd/kubectl
build kwok sigs.k8s.io/kwok/cmd/kwok "$here/kwok"
build helm helm.sh/helm/v3/cmd/helm "$here/helm"
echo "binaries in $bin ($((SECONDS - total))s)"
