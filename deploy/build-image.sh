#!/usr/bin/env bash
# Builds the hub's image (deploy/Dockerfile) from a wheelhouse made on this host.
#
#   deploy/build-image.sh [TAG]        TAG defaults to carinho-integracoes:local
#   deploy/build-image.sh --sandbox [TAG]   also the sandbox's image, TAG-sandbox (compose profile `sandbox`)
#   BASE_IMAGE=carinho-local/python:3.11 deploy/build-image.sh   # base from deploy/local-base/build.sh
#
# 1. the project's wheel  -> deploy/.build/project/   (every time: it is the code)
# 2. its runtime requirements, read from the wheel's metadata without extras and without
#    what only the sandbox needs -> deploy/.build/requirements.txt
# 3. their wheels -> deploy/.build/wheels/  (only when that list changed)
# 4. docker build --network host; the image installs with --no-index from those wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
sandbox=false
[[ "${1:-}" == "--sandbox" ]] && { sandbox=true; shift; }
TAG="${1:-carinho-integracoes:local}"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
PY="${PYTHON:-.venv/bin/python}"
out=deploy/.build
# the simulators' own dependencies: never in a deployment image
SANDBOX_ONLY="${SANDBOX_ONLY:-aiosmtpd}"

rm -rf "$out/project"
mkdir -p "$out/project" "$out/wheels"
"$PY" -m pip wheel --no-deps . -w "$out/project" >"$out/pip-project.log" 2>&1 \
  || { tail -20 "$out/pip-project.log" >&2; exit 1; }
wheel="$(ls "$out"/project/*.whl)"
# the sandbox's own distribution (sandbox/), for the sandbox's image only
rm -rf "$out/sandbox" && mkdir -p "$out/sandbox"
if [[ -f sandbox/setup.py ]]; then
  "$PY" -m pip wheel --no-deps ./sandbox -w "$out/sandbox" >>"$out/pip-project.log" 2>&1 \
    || { tail -20 "$out/pip-project.log" >&2; exit 1; }
  rm -rf sandbox/build sandbox/*.egg-info
fi
rm -rf build ./*.egg-info

"$PY" - "$wheel" "$SANDBOX_ONLY" "$out/requirements-sandbox.txt" >"$out/requirements.txt.new" <<'PYEOF'
import re
import sys
import zipfile

wheel, excluded, sandbox_file = sys.argv[1], set(sys.argv[2].split(",")), sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    lines = z.read(meta).decode().splitlines()
reqs, sandbox = [], []
for line in lines:
    if not line.startswith("Requires-Dist:"):
        continue
    req = line.split(":", 1)[1].strip()
    name = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]
    if re.search(r"""extra\s*==\s*["']sandbox["']""", req):
        sandbox.append(req.split(";")[0].strip())
    elif "extra ==" in req:
        continue
    elif name.lower() in excluded:
        sandbox.append(req)
    else:
        reqs.append(req)
print("\n".join(sorted(reqs, key=str.lower)))
with open(sandbox_file, "w") as f:
    f.write("\n".join(sorted(sandbox, key=str.lower)) + "\n")
PYEOF
if ! cmp -s "$out/requirements.txt.new" "$out/requirements.txt.base" \
   || [[ "$(cat "$out/wheels/.complete" 2>/dev/null)" != "$BASE_IMAGE" ]]; then
  cp "$out/requirements.txt.new" "$out/requirements.txt"
  mv "$out/requirements.txt.new" "$out/requirements.txt.base"
  rm -rf "$out/wheels" && mkdir -p "$out/wheels"
  "$PY" -m pip wheel -r "$out/requirements.txt" -r "$out/requirements-sandbox.txt" -w "$out/wheels" \
    >"$out/pip-wheel.log" 2>&1 \
    || { tail -20 "$out/pip-wheel.log" >&2; exit 1; }
  # what the image's interpreter needs beyond this host's (markers evaluated for it)
  target_env="$(docker run --rm --network none --entrypoint python3 "$BASE_IMAGE" -c \
    'import json, os, platform, sys; print(json.dumps({"implementation_name": sys.implementation.name, "implementation_version": platform.python_version(), "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(), "platform_system": platform.system(), "platform_version": platform.version(), "python_full_version": platform.python_version(), "platform_python_implementation": platform.python_implementation(), "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform}))')"
  cat "$out/requirements.txt" "$out/requirements-sandbox.txt" >"$out/requirements-all.txt"
  while extra="$("$PY" deploy/wheelhouse.py "$out/wheels" "$out/requirements-all.txt" "$target_env")" \
        && [[ -n "$extra" ]]; do
    echo "$extra" >>"$out/requirements-all.txt"
    echo "$extra" >>"$out/requirements.txt"
    # shellcheck disable=SC2086
    "$PY" -m pip wheel --no-deps $extra -w "$out/wheels" >>"$out/pip-wheel.log" 2>&1 \
      || { tail -20 "$out/pip-wheel.log" >&2; exit 1; }
  done
  echo "$BASE_IMAGE" >"$out/wheels/.complete"
else
  rm -f "$out/requirements.txt.new"
fi

DOCKER_BUILDKIT=0 docker build --force-rm --network host --build-arg BASE_IMAGE="$BASE_IMAGE" -f deploy/Dockerfile -t "$TAG" . \
  >"$out/docker-build.log" 2>&1 || { tail -40 "$out/docker-build.log" >&2; exit 1; }
echo "built $TAG from $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
if $sandbox; then
  DOCKER_BUILDKIT=0 docker build --force-rm --network host --build-arg BASE_IMAGE="$BASE_IMAGE" -f deploy/sandbox.Dockerfile \
    -t "$TAG-sandbox" . >"$out/docker-build-sandbox.log" 2>&1 || { tail -40 "$out/docker-build-sandbox.log" >&2; exit 1; }
  echo "built $TAG-sandbox"
fi
