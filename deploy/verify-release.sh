#!/usr/bin/env bash
# Verifies a downloaded Portier release before installing it (docs/maintenance.md):
#   1. SHA256SUMS.minisig is a valid signature of SHA256SUMS by the release key,
#      and its trusted comment names the expected release;
#   2. every file SHA256SUMS lists is present and has that SHA-256;
#   3. no other file sits in the directory unlisted (nothing to install by mistake).
# Exit status 0 only if all hold.
#
# Usage: deploy/verify-release.sh [--pubkey FILE] DIR
#   --pubkey  the published release public key (default: deploy/release-key.pub
#             next to this script, when present). Obtain it from the supplier
#             through a channel other than the download itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

pubkey=
dir=
while [ $# -gt 0 ]; do
  case $1 in
    --pubkey) pubkey=$2; shift 2 ;;
    -*) echo "usage: $0 [--pubkey FILE] DIR" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || { echo "usage: $0 [--pubkey FILE] DIR" >&2; exit 2; }
if [ -z "$pubkey" ] && [ -r "$here/release-key.pub" ]; then
  pubkey=$here/release-key.pub
fi
[ -n "$pubkey" ] || { echo "no release public key: give --pubkey FILE" >&2; exit 2; }
command -v minisign >/dev/null || { echo "minisign is needed (Debian package minisign)" >&2; exit 2; }

fail() { echo "VERIFICATION FAILED: $*" >&2; exit 1; }

[ -f "$dir/SHA256SUMS" ] || fail "$dir/SHA256SUMS is missing"
[ -f "$dir/SHA256SUMS.minisig" ] || fail "$dir/SHA256SUMS.minisig is missing"

# 1. The checksum list is the one the release key signed.
if ! comment=$(minisign -V -Q -p "$pubkey" -m "$dir/SHA256SUMS" -x "$dir/SHA256SUMS.minisig" 2>&1); then
  fail "the signature of SHA256SUMS does not verify with $pubkey: $comment"
fi
echo "signature OK (trusted comment: $comment)"
case $comment in
  "portier "*" SHA256SUMS") ;;
  *) fail "unexpected trusted comment: $comment" ;;
esac

# 2. Every listed file matches (sha256sum --strict: a malformed line is an error).
if ! (cd "$dir" && sha256sum --check --strict --quiet SHA256SUMS); then
  fail "a file does not match SHA256SUMS"
fi
echo "checksums OK"

# 3. Nothing unlisted.
listed=$(cd "$dir" && sed 's/^[0-9a-f]\{64\}  \*\{0,1\}//' SHA256SUMS | sort)
present=$(cd "$dir" && find . -mindepth 1 -maxdepth 1 ! -name SHA256SUMS ! -name SHA256SUMS.minisig -printf '%f\n' | sort)
if [ "$listed" != "$present" ]; then
  fail "files present but not in SHA256SUMS: $(comm -13 <(echo "$listed") <(echo "$present") | tr '\n' ' ')"
fi
echo "release verified: $comment"
