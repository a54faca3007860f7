"""docs/benchmarks.md holds one section per benchmark, each between its own markers, so every
benchmark rewrites its own figures and leaves the others as they were."""

from __future__ import annotations

import re

from tests.support import REPO

PAGE = REPO / "docs" / "benchmarks.md"
TITLE = (
    "# Benchmarks\n\nFigures from `make bench` (every benchmark) or one `python -m bench.NAME`.\n"
)


def write_section(name: str, markdown: str) -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    page = PAGE.read_text(encoding="utf-8") if PAGE.exists() else TITLE
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.DOTALL)
    page = (
        pattern.sub(lambda _: block, page)
        if pattern.search(page)
        else f"{page.rstrip()}\n\n{block}\n"
    )
    PAGE.write_text(page, encoding="utf-8")
