"""Writes docs/configuration.md from the services' settings classes (names, defaults, meaning).

`make docs` runs it; a test fails when the committed page differs from what this makes.
"""

import sys
from pathlib import Path

from services import registry

ROOT = Path(__file__).resolve().parent.parent
HEADER = """# Configuration

Every setting of a service, of the router or of a job worker is read from the environment,
`<PREFIX><NAME>` in upper case (for example `WHISPER_EN_MAX_CONCURRENCY=8`,
`ROUTER_ROUTES=en=whisper_en`, `WORKER_DATABASE_URL=postgresql://...`); the flags of
`stt serve`, `stt router` and `stt worker` override the environment. `stt up` sets the ports
and the data directory itself (see the README). The job URI policy (`JOBS_URI_*`) is read
alike by the router and the job workers. This page is generated from the settings classes by
`make docs`.
"""


def render() -> str:
    parts = [HEADER]
    for name, settings in registry.settings_classes():
        parts.append(f"\n## {name}\n\n| variable | default | meaning |\n|---|---|---|")
        for variable, field in settings.variables():
            default = field.default_factory() if field.default_factory else field.default
            parts.append(f"| `{variable}` | {_show(default)} | {field.description} |")
    return "\n".join(parts) + "\n"


def _show(value: object) -> str:
    if value is None or value == {}:
        return "(none)"
    if value == "":
        return "(empty)"
    if isinstance(value, list):
        return "(empty)" if not value else "`" + ",".join(map(str, value)) + "`"
    if isinstance(value, Path):
        return f"`{str(value).replace(str(Path.home()), '~')}`"
    return f"`{value}`"


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "configuration.md"
    out.write_text(render(), encoding="utf-8")
