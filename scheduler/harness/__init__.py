"""A real, local Kubernetes control plane (etcd + kube-apiserver) for tests, demos and benchmarks.

Nothing here is mocked: `make binaries` builds upstream etcd, kube-apiserver, kube-scheduler,
kubectl and KWOK from source (hack/), and `berth cluster up` runs them on loopback.
"""
