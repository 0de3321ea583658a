#!/usr/bin/env bash
# Rebuilds linux-x64/libpeftlab_scalar_quarantine.so from scalar_quarantine.c (see that file for why it exists).
# Output is deterministic for one gcc version; the version that built the shipped binary is in linux-x64/BUILT_WITH.
# Usage: bash src/PeftLab/Runtime/Native/build.sh [output-path]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/linux-x64/libpeftlab_scalar_quarantine.so}"
# Linked against a stub with the bridge's soname, so DT_NEEDED names libLibTorchSharp.so without needing the real one here.
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
echo 'void THSTorch_dispose_scalar(void *p) { (void)p; }' > "$stub/stub.c"
gcc -shared -fPIC -O2 -Wl,-soname,libLibTorchSharp.so -o "$stub/libLibTorchSharp.so" "$stub/stub.c"
gcc -shared -fPIC -O2 -Wall -Wextra -Werror -ffile-prefix-map="$here"=. -Wl,--no-as-needed \
    -Wl,-soname,libpeftlab_scalar_quarantine.so -o "$out" "$here/scalar_quarantine.c" -L"$stub" -lLibTorchSharp -ldl -lpthread
if [ -z "${1:-}" ]; then gcc --version | head -1 > "$here/linux-x64/BUILT_WITH"; fi
echo "built $out"
