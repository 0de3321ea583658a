# Sourced by the bench scripts after they set $root and $peer: the peer's OpenBLAS (the fair fp32 peer), a check for
# Debian's python3-torch, and a built PeftLab CLI in $dll.
OB=/tmp/peer-openblas/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -d "$OB" ] || sh "$peer/setup_openblas.sh" >&2
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "python3-torch missing: apt-get install -y python3-torch python3-numpy" >&2; exit 1; }
"$root/peftlab" doctor >/dev/null   # build once
dll="$root/src/PeftLab.Cli/bin/Release/net10.0/PeftLab.Cli.dll"
