#!/usr/bin/env bash
# Create one virtual environment per peer under benchmarks/quality/_envs/.venv-<peer>.
# Each peer pins versions that clash with the project venv (pandas<3, numpy<2), so none
# of them can share it. Usage: peers/setup.sh [sdmetrics] [evidently] [alibi]
# (no argument: all three). PYTHON picks the interpreter (default python3.11).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
envs="$(cd "$here/.." && pwd)/_envs"
python=${PYTHON:-python3.11}
peers=("$@")
if [ ${#peers[@]} -eq 0 ]; then
  peers=(sdmetrics evidently alibi)
fi
mkdir -p "$envs"
status=0
for peer in "${peers[@]}"; do
  req="$here/requirements-$peer.txt"
  if [ ! -f "$req" ]; then
    echo "setup.sh: unknown peer '$peer' (no $req)" >&2
    exit 2
  fi
  venv="$envs/.venv-$peer"
  echo "== $peer -> $venv"
  "$python" -m venv "$venv"
  # The constraints file keeps torch on the pinned CPU build wherever a peer pulls it in.
  if "$venv/bin/pip" install -q -c "$root/.ci/constraints.txt" -r "$req"; then
    echo "== $peer ready"
  else
    echo "== $peer FAILED" >&2
    status=1
  fi
done
exit $status
