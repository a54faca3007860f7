"""Generates the Python code for every .proto under proto/ into an output folder.

`make proto` runs this into gen/; a test runs it into a temporary folder and compares, so the
committed code can never drift from the .proto files.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import google.longrunning
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as aliases:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{_longrunning_alias(Path(aliases))}",
            f"-I{_googleapis_root()}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed for {protos}")
    # Every folder of generated modules is a regular package, so tools and type checkers agree.
    for proto in protos:
        package = out_dir / Path(proto).parent
        while package != out_dir:
            (package / "__init__.py").touch()
            package = package.parent


def _googleapis_root() -> Path:
    """The folder that holds googleapis-common-protos' `google/` tree of .proto files."""
    return Path(next(iter(google.longrunning.__path__))).parent.parent


def _longrunning_alias(folder: Path) -> Path:
    """An include folder where operations.proto sits under the name its Python code registers.

    googleapis-common-protos ships the file as `operations_proto.proto`, but its generated module
    registers it as `google/longrunning/operations.proto`; importing it under any other name
    compiles, then fails when the two descriptors meet at import time.
    """
    shipped = Path(next(iter(google.longrunning.__path__))) / "operations_proto.proto"
    alias = folder / "google" / "longrunning" / "operations.proto"
    alias.parent.mkdir(parents=True)
    shutil.copyfile(shipped, alias)
    return folder


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "gen")
