#!/usr/bin/env bash
# Builds a release of Portier and writes, in OUT/portier-VERSION/:
#   portier-VERSION-ARCH-linux.tar.gz   the binary, LICENSE, README.md, SECURITY.md,
#                                      CHANGELOG.md, the systemd unit
#   portier-VERSION.cdx.json           its CycloneDX SBOM (`portier sbom`)
#   SHA256SUMS                         SHA-256 of both
#   SHA256SUMS.minisig                 minisign signature of SHA256SUMS
# Verify with deploy/verify-release.sh (docs/maintenance.md).
#
# Usage: deploy/release.sh --key SECRET_KEY [--out DIR] [--binary PATH]
#   --key     the release key (minisign secret key; minisign asks for its
#             password unless it was created with -W). Also PORTIER_RELEASE_KEY.
#   --out     where to write (default: target/release-artifacts).
#   --binary  package this binary instead of running `cargo build --release --locked`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

key=${PORTIER_RELEASE_KEY:-}
out=$root/target/release-artifacts
binary=
while [ $# -gt 0 ]; do
  case $1 in
    --key) key=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "usage: $0 --key SECRET_KEY [--out DIR] [--binary PATH]" >&2; exit 2 ;;
  esac
done
[ -n "$key" ] || { echo "no release key: give --key or PORTIER_RELEASE_KEY" >&2; exit 2; }
[ -r "$key" ] || { echo "cannot read the release key $key" >&2; exit 2; }
command -v minisign >/dev/null || { echo "minisign is needed (Debian package minisign)" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
[ -n "$version" ] || { echo "no version in Cargo.toml" >&2; exit 1; }
if [ -z "$binary" ]; then
  (cd "$root" && cargo build --release --locked)
  binary=$root/target/release/portier
fi
[ -x "$binary" ] || { echo "$binary is not an executable" >&2; exit 1; }
arch=$(uname -m)

dir=$out/portier-$version
if [ -e "$dir" ]; then
  echo "$dir exists: a release is written once (remove it to rebuild)" >&2; exit 1
fi
mkdir -p "$dir"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

name=portier-$version-$arch-linux
mkdir -p "$stage/$name"
install -m 0755 "$binary" "$stage/$name/portier"
for f in LICENSE README.md SECURITY.md CHANGELOG.md deploy/portier.service; do
  install -m 0644 "$root/$f" "$stage/$name/$(basename "$f")"
done
# The same bytes for the same inputs: fixed order, owner and times, no gzip timestamp.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
tar -C "$stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -cf - "$name" \
  | gzip -n -9 >"$dir/$name.tar.gz"
"$binary" sbom >"$dir/portier-$version.cdx.json"

(cd "$dir" && sha256sum -- "$name.tar.gz" "portier-$version.cdx.json" >SHA256SUMS)
# The trusted comment is signed too: it names the release, so a signature cannot
# be passed off for another version.
minisign -S -s "$key" -m "$dir/SHA256SUMS" -x "$dir/SHA256SUMS.minisig" \
  -t "portier $version SHA256SUMS" -c "portier $version release"
echo "release written to $dir:"
ls -1 "$dir"
