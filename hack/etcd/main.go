// Command etcd is upstream etcd's server entry point, built at the etcd version that
// k8s.io/kubernetes itself pins, so the test control plane gets a matching 3.5.x etcd
// without a separate download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
