// Command etcd is upstream etcd's server entry point, built at the etcd version that
// k8s.io/kubernetes v1.36.3 itself pins (v3.6.8), so the test control plane gets a matching etcd
// without a separate download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
