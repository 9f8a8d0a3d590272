"""Completes a wheelhouse for the image's interpreter, which may not be this host's.

``pip wheel`` evaluates environment markers against the Python running it: the host's
3.11.7 needs no ``async-timeout`` for redis, Debian bookworm's 3.11.2 (the local base
image) does (``python_full_version < "3.11.3"``). Starting from the requirements file,
this walks the wheels' ``Requires-Dist`` with the markers evaluated for the target
interpreter's environment (JSON run *there*) and prints, one a line, each requirement
the wheelhouse does not satisfy, so ``pip wheel`` can add it.

    python deploy/wheelhouse.py WHEELHOUSE REQUIREMENTS TARGET_ENV_JSON
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename


def main(wheelhouse: Path, requirements: Path, target_env: dict[str, str]) -> list[str]:
    wheels: dict[str, list[tuple[str, Path]]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        wheels.setdefault(name, []).append((str(version), wheel))

    def requires(wheel: Path) -> list[Requirement]:
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            return [Requirement(line.split(":", 1)[1].strip())
                    for line in z.read(meta).decode().splitlines() if line.startswith("Requires-Dist:")]

    todo = [Requirement(line) for line in requirements.read_text().splitlines() if line.strip()]
    todo = [r for r in todo if r.marker is None or r.marker.evaluate({**target_env, "extra": ""})]
    seen: set[tuple[str, frozenset[str]]] = set()
    missing: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        match = [path for version, path in wheels.get(name, ()) if req.specifier.contains(version, prereleases=True)]
        if not match:
            missing.add(f"{req.name}{req.specifier}")
            continue
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        for dep in requires(match[-1]):
            if dep.marker is None or any(dep.marker.evaluate({**target_env, "extra": e})
                                         for e in ["", *sorted(req.extras)]):
                todo.append(dep)
    return sorted(missing)


if __name__ == "__main__":
    print("\n".join(main(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3]))))
