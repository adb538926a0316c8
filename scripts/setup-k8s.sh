#!/usr/bin/env bash
# Builds the real Kubernetes control plane the k8s end-to-end test runs against (pytest -m k8s):
# kube-apiserver, kube-controller-manager and kubectl from the k8s.io/kubernetes Go module, and a
# single-member etcd from go.etcd.io/etcd/server/v3's embed package, at the versions pinned in
# scripts/k8s-e2e/go.mod and go.sum. Output: .tools/k8s/bin/ and .tools/k8s/VERSION (gitignored).
#
# Not part of scripts/setup.sh: the first build takes tens of minutes on two cores, and the default
# test run does not need it. A rerun with the binaries and the version stamp in place does nothing.
#
#   scripts/setup-k8s.sh && .venv/bin/python -m pytest -m k8s
set -euo pipefail
cd "$(dirname "$0")/.."

src=scripts/k8s-e2e
out=.tools/k8s
bins="kube-apiserver kube-controller-manager kubectl etcd"
if ! command -v go >/dev/null 2>&1; then
  echo "setup-k8s: Go is not on PATH; it builds the control plane from $src/go.mod. Install Go and rerun" >&2
  exit 1
fi
k8s=$(cd "$src" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd=$(cd "$src" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
inputs=$(cat "$src/go.mod" "$src/go.sum" "$src/etcd/main.go" "$0" | sha256sum | cut -c1-16)
stamp="kubernetes $k8s, etcd $etcd, $(go env GOVERSION), inputs $inputs"

have=$(cat "$out/VERSION" 2>/dev/null || true)
missing=0
for b in $bins; do [ -x "$out/bin/$b" ] || missing=1; done
if [ "$have" = "$stamp" ] && [ "$missing" = 0 ]; then
  echo "setup-k8s: $out/bin is up to date ($stamp)"
  exit 0
fi

echo "setup-k8s: building $bins (kubernetes $k8s, etcd $etcd) into $out/bin; the first build takes tens of minutes"
mkdir -p "$out/build"
start=$(date +%s)
# -mod=mod: go.sum pins every module; the staging modules come from the proxy by the go.mod's replaces.
# The version variables Kubernetes' own build sets (hack/lib/version.sh), so --version tells the truth.
minor=${k8s#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
(cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags="$ldflags" -o "$OLDPWD/$out/build/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl ./etcd)
rm -rf "$out/bin"
mv "$out/build" "$out/bin"
echo "$stamp" > "$out/VERSION"
echo "setup-k8s: built in $(( $(date +%s) - start )) s: $stamp"
"$out/bin/kube-apiserver" --version
