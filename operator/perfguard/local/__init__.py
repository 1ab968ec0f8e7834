"""Local servers for the demo, tests and benchmarks: Prometheus, etcd, kube-apiserver."""
