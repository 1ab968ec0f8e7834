"""perfguard: a Kubernetes operator guarding production performance."""

import time

__version__ = "0.1.0"

# time.monotonic() at the package's first import: the operator process' start, near
# enough (the interpreter's own start-up comes before it, the imports after it).
IMPORTED_AT = time.monotonic()

GROUP = "perfguard.dev"
VERSION = "v1alpha1"
