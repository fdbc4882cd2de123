// Command etcd is upstream etcd's server entry point, built at the etcd version that
// k8s.io/kubernetes v1.37.2 itself pins (v3.7.0), so the test control plane gets a matching etcd
// without a separate download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
