"""The committed generated code is exactly what `make proto` makes from proto/."""

import filecmp

from tests.support import REPO
from tools.protogen import generate


def test_generated_code_is_fresh(tmp_path):
    generate(tmp_path)
    committed = REPO / "gen"
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh, "protoc generated nothing"
    stale = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, committed / p, shallow=False)]
    assert not stale, f"gen/ is stale, run `make proto`: {stale}"
    extra = sorted(
        str(p.relative_to(committed))
        for p in committed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.relative_to(committed) not in fresh
    )
    assert not extra, f"gen/ holds files protoc no longer makes: {extra}"
