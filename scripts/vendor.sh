#!/usr/bin/env bash
# The browser assets the web pages use, vendored from npm into duopass/server/web/static/vendor/.
#
#   scripts/vendor.sh           fetch every package of the manifest with `npm pack`, check the
#                               tarball against its npm integrity and every file against its
#                               sha256, and (re)write the files; a mismatch stops with an error.
#   scripts/vendor.sh --update  the same, but record the hashes found (after changing a version
#                               in the manifest: review the diff before committing it).
#
# The manifest (vendor/manifest.json) names each package, its version and the files taken from
# its tarball (`path`, or `path:FIRST-LAST` for a range of lines). Needs node's npm and python3;
# nothing runs from the packages themselves (npm pack fetches, it does not install).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENDOR="$ROOT/duopass/server/web/static/vendor"
MODE=${1:-check}
[ "$MODE" = check ] || [ "$MODE" = --update ] || { echo "usage: $0 [--update]" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 - "$VENDOR" "$WORK" "$MODE" <<'PY'
import base64, hashlib, json, shutil, subprocess, sys, tarfile
from pathlib import Path

vendor, work, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
manifest_path = vendor / "manifest.json"
manifest = json.loads(manifest_path.read_text())
failed = False
for package in manifest["packages"]:
    spec = f"{package['name']}@{package['version']}"
    packed = json.loads(subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(work)],
        check=True, capture_output=True, text=True, cwd=work,
    ).stdout)[0]
    tarball = work / packed["filename"]
    sri = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if mode == "--update":
        package["integrity"] = sri
    elif sri != package["integrity"]:
        print(f"vendor.sh: {spec}: tarball integrity {sri} is not the manifest's", file=sys.stderr)
        failed = True
        continue
    target = vendor / f"{package['name']}-{package['version']}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    hashes = package.setdefault("sha256", {})
    with tarfile.open(tarball) as archive:
        for name, source in package["files"].items():
            path, _, lines = source.partition(":")
            member = archive.extractfile(path)
            assert member is not None, f"{spec}: no {path}"
            data = member.read()
            if lines:
                first, last = (int(n) for n in lines.split("-"))
                data = b"".join(data.splitlines(keepends=True)[first - 1 : last])
            digest = hashlib.sha256(data).hexdigest()
            if mode == "--update":
                hashes[name] = digest
            elif hashes.get(name) != digest:
                print(f"vendor.sh: {spec}: {name} has sha256 {digest}, not the manifest's",
                      file=sys.stderr)
                failed = True
            (target / name).write_bytes(data)
    print(f"vendor.sh: {spec} -> {target.relative_to(vendor.parent.parent.parent.parent.parent)}",
          file=sys.stderr)
if mode == "--update":
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
sys.exit(1 if failed else 0)
PY
