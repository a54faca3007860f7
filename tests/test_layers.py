"""The layers of services/ hold: the import contracts in pyproject.toml are kept by the code,
and they do catch an import that crosses them (a copy of the tree with one such import)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO / 'gen'}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_code_keeps_every_import_contract():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_import_from_the_core_up_to_the_router_breaks_a_contract(tmp_path):
    shutil.copytree(REPO / "services", tmp_path / "services")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    names = tmp_path / "services" / "core" / "names.py"
    names.write_text(names.read_text() + "\nimport services.router.path  # noqa\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "Layers: command line and stack, router, jobs, core BROKEN" in done.stdout
    assert "services.core.names -> services.router.path" in done.stdout
