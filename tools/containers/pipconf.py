"""The host's pip configuration, made available to an image build.

An image build must install from the same package indexes the host's pip is configured with
(a mirror, local wheel folders, a constraint file, the certificate authority of a proxy),
and the repository names none of them. This reads the configuration pip itself sees on the
host (`pip config list`: its files and PIP_* variables), writes it to one pip.conf outside
the repository, and lists what the build must mount, each at the path the configuration
names: that file as the build container's /etc/pip.conf (a global configuration pip always
reads), and every local file and folder the configuration points at.
"""

from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

# pip reads this file in any image: it is where the build container gets the host's settings.
CONTAINER_CONFIG = "/etc/pip.conf"
# Options whose values are index URLs: a file:// index's pages link to files beside the
# index folder (../../files/...), so its parent folder is mounted.
INDEX_OPTIONS = {"index-url", "extra-index-url"}


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str

    def volume(self) -> str:
        """The `--volume` argument: read-only, at the path the configuration names."""
        return f"{self.source}:{self.target}:ro"


def host_options(python: str = sys.executable) -> dict[str, dict[str, str]]:
    """pip's configuration on this host, as `python -m pip` sees it."""
    done = subprocess.run(
        [python, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return parse_config_list(done.stdout)


def parse_config_list(text: str) -> dict[str, dict[str, str]]:
    """`pip config list` output by section (`global`, `install`, ...); the PIP_* variables
    it lists (section `:env:`) go into every section, where they win as they do in pip."""
    sections: dict[str, dict[str, str]] = {}
    from_env: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        section, _, option = key.partition(".")
        text_value = str(ast.literal_eval(value))  # pip prints each value as a Python literal
        if section == ":env:":
            from_env[option] = text_value
        else:
            sections.setdefault(section, {})[option] = text_value
    if from_env:
        sections.setdefault("global", {})
    for options in sections.values():
        options.update(from_env)
    return {name: options for name, options in sections.items() if options}


def write_config(sections: dict[str, dict[str, str]], path: Path) -> Path:
    parser = configparser.ConfigParser(interpolation=None)
    for name, options in sections.items():
        parser[name] = options
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        parser.write(out)
    return path


def local_paths(sections: dict[str, dict[str, str]]) -> list[Path]:
    """Every local file or folder the configuration names, the outermost of nested ones."""
    found: set[Path] = set()
    for options in sections.values():
        for option, value in options.items():
            for token in value.split():
                path = _local(token)
                if path is None or not path.exists():
                    continue
                if option in INDEX_OPTIONS and token.startswith("file:"):
                    path = path.parent
                found.add(Path(os.path.normpath(path)))
    return sorted(p for p in found if not any(q != p and q in p.parents for q in found))


def build_mounts(workdir: Path, python: str = sys.executable) -> list[Mount]:
    """The mounts a build needs to install as this host does; none when pip has no settings."""
    sections = host_options(python)
    if not sections:
        return []
    config = write_config(sections, workdir / "pip.conf")
    named = local_paths(sections)
    return [Mount(config, CONTAINER_CONFIG), *(Mount(p.resolve(), str(p)) for p in named)]


def _local(token: str) -> Path | None:
    if token.startswith("file:"):
        return Path(unquote(urlparse(token).path))
    if token.startswith("/"):
        return Path(token)
    return None
