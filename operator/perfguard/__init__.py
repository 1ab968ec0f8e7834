"""perfguard: a Kubernetes operator guarding production performance."""

__version__ = "0.1.0"

GROUP = "perfguard.dev"
VERSION = "v1alpha1"
