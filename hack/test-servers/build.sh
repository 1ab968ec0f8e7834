#!/usr/bin/env bash
# Build the real test servers (kube-apiserver, etcd, kubectl, helm) from Go modules.
#
# Why a wrapper module: k8s.io/kubernetes is not meant to be depended upon; its go.mod
# points every k8s.io/* staging module at ./staging/src, which does not exist in the
# module zip. A tiny wrapper module requires k8s.io/kubernetes at the pinned release and
# replaces every staging module with the published v0.X.Y of the same release, so
# `go build` can compile the real binaries. etcd is built from the very etcd server
# module that release depends on, so the pair is the one upstream tests together.
#
# Output: $OUT_DIR/{kube-apiserver,etcd,kubectl,helm}. A machine-wide cache
# ($PERFGUARD_MACHINE_CACHE, default ~/.cache/perfguard) lets a fresh clone on the same
# machine reuse binaries built by an earlier run; Go's own module and build caches make
# a rebuild fast too.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

OUT_DIR="${1:?usage: build.sh OUT_DIR}"
key="k8s-${KUBERNETES_VERSION}_helm-${HELM_VERSION}_r${BUILD_REVISION}"
machine_cache="${PERFGUARD_MACHINE_CACHE:-$HOME/.cache/perfguard}/test-servers/$key"
binaries=(kube-apiserver etcd kubectl helm)

have_all() {
    local dir="$1" b
    for b in "${binaries[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

mkdir -p "$OUT_DIR"
if have_all "$OUT_DIR"; then
    echo "test servers: cached in $OUT_DIR"
    exit 0
fi
if have_all "$machine_cache"; then
    echo "test servers: copying from machine cache $machine_cache"
    for b in "${binaries[@]}"; do cp -f "$machine_cache/$b" "$OUT_DIR/$b"; done
    exit 0
fi

command -v go >/dev/null || { echo "error: go is required to build the test servers" >&2; exit 1; }
work="${PERFGUARD_BUILD_DIR:-$HOME/.cache/perfguard/build}/$key"
mkdir -p "$work/k8s" "$work/helm"
start=$(date +%s)

# ---- Kubernetes: kube-apiserver, kubectl, and etcd -------------------------------
k8s_minor="${KUBERNETES_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
staging_version="v0.${KUBERNETES_VERSION#v1.}"
cd "$work/k8s"
cat > go.mod <<GOMOD
module perfguard.dev/test-servers/k8s

go 1.24
GOMOD
echo "test servers: resolving k8s.io/kubernetes@$KUBERNETES_VERSION"
gomod_file="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
# Every `k8s.io/X => ./staging/src/k8s.io/X` in the release's go.mod becomes
# `k8s.io/X => k8s.io/X v0.<minor>.<patch>` here.
{
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    sed -nE 's#^[[:space:]]*(k8s\.io/[A-Za-z0-9._-]+) => \./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod_file"
    echo ")"
} >> go.mod
export GOFLAGS=-mod=mod
go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION" >/dev/null
etcd_version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
go get "go.etcd.io/etcd/server/v3@$etcd_version" >/dev/null

build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
echo "test servers: building kube-apiserver $KUBERNETES_VERSION (slow the first time)"
go build -trimpath -ldflags "-s -w $ldflags" -o "$work/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "test servers: building kubectl $KUBERNETES_VERSION"
go build -trimpath -ldflags "-s -w $ldflags" -o "$work/bin/kubectl" k8s.io/kubernetes/cmd/kubectl
echo "test servers: building etcd $etcd_version"
go build -trimpath -ldflags "-s -w" -o "$work/bin/etcd" go.etcd.io/etcd/server/v3

# ---- Helm v3: its own module graph, kept apart from the Kubernetes one ------------
cd "$work/helm"
cat > go.mod <<GOMOD
module perfguard.dev/test-servers/helm

go 1.24
GOMOD
go get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >/dev/null
# Like helm's own Makefile: the default Kubernetes version that `helm template` assumes is
# the client-go it is built with; unset, it would be v1.20 and refuse charts needing more.
client_go="$(go list -m -f '{{.Version}}' k8s.io/client-go)"
helm_k8s_minor="${client_go#v0.}"; helm_k8s_minor="${helm_k8s_minor%%.*}"
echo "test servers: building helm $HELM_VERSION (Kubernetes 1.$helm_k8s_minor by default)"
go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$helm_k8s_minor" \
    -o "$work/bin/helm" helm.sh/helm/v3/cmd/helm

mkdir -p "$machine_cache"
for b in "${binaries[@]}"; do
    cp -f "$work/bin/$b" "$machine_cache/$b"
    cp -f "$work/bin/$b" "$OUT_DIR/$b"
done
echo "test servers: built in $(( $(date +%s) - start ))s into $OUT_DIR"
