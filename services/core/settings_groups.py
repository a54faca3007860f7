"""The machinery of nested settings: a process's settings are one `ProcessSettings` object, and
each concern a `SettingsGroup` field of it (made with `group`). A group reads its fields with
its own prefix, so every variable keeps its flat name (`ROUTER_MAX_ATTEMPTS` is
`settings.failover.max_attempts`), and may be given flat to the constructor by the name its
variable has without the process's prefix (`RouterSettings(max_attempts=2)`). A group whose
fields must agree with each other checks them in `check_together`, which names its variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsGroup(BaseSettings):
    """The settings of one concern. Its variables are named with the process's prefix and
    the group's `prefix` after it (`ROUTER_` + `OPENAI_` + `MAX_REQUEST_BYTES`), unless the
    group's `env_prefix` names them whole (a group several processes read alike)."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)
    prefix: ClassVar[str] = ""

    @classmethod
    def env_prefix_in(cls, process_prefix: str) -> str:
        return cls.model_config.get("env_prefix") or process_prefix + cls.prefix

    def check_together(self, env_prefix: str) -> None:
        """Raises ValueError, naming variables by `env_prefix` (the group's, upper case), when
        fields that go together disagree; called once the process's settings are read."""


class ProcessSettings(BaseSettings):
    """One process's settings: fields of its own, and `SettingsGroup` fields."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _make_groups(cls, data: Any) -> Any:
        """Each group is read from the environment with its prefix; values given by their
        flat names (`max_attempts` for `ROUTER_MAX_ATTEMPTS`) go to it first."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, kind in cls.groups().items():
            prefix = cls.flat_prefix(kind)
            given = {f: data.pop(prefix + f) for f in kind.model_fields if prefix + f in data}
            if name in data and given:
                raise ValueError(f"{name} is given both whole and by its fields {sorted(given)}")
            if name not in data:
                data[name] = kind(_env_prefix=kind.env_prefix_in(cls._own_prefix()), **given)
        return data

    @model_validator(mode="after")
    def _check_groups(self) -> ProcessSettings:
        for name, kind in self.groups().items():
            getattr(self, name).check_together(kind.env_prefix_in(self._own_prefix()).upper())
        return self

    @classmethod
    def _own_prefix(cls) -> str:
        return cls.model_config.get("env_prefix", "")

    @classmethod
    def groups(cls) -> dict[str, type[SettingsGroup]]:
        return {
            name: field.annotation
            for name, field in cls.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, SettingsGroup)
        }

    @classmethod
    def flat_prefix(cls, kind: type[SettingsGroup]) -> str:
        """What a group's field names take before them to be flat names: its variables'
        prefix beyond the process's (`ROUTER_OPENAI_` in `ROUTER_`: `openai_`)."""
        own, theirs = cls._own_prefix(), kind.env_prefix_in(cls._own_prefix())
        return theirs.removeprefix(own).lower() if theirs.startswith(own) else theirs.lower()

    @classmethod
    def variables(cls) -> Iterator[tuple[str, FieldInfo]]:
        """Every variable the process reads, with the field that reads it (for the docs)."""
        own, groups = cls._own_prefix(), cls.groups()
        for name, field in cls.model_fields.items():
            if name not in groups:
                yield f"{own}{name}".upper(), field
                continue
            prefix = groups[name].env_prefix_in(own)
            for inner, inner_field in groups[name].model_fields.items():
                yield f"{prefix}{inner}".upper(), inner_field

    def given_variables(self) -> Iterator[tuple[str, Any]]:
        """The variables of the values this object was given rather than defaulted, with
        those values: what another process must be told to read the same settings."""
        own, groups = self._own_prefix(), self.groups()
        for name in self.model_fields_set:
            if name not in groups:
                yield f"{own}{name}".upper(), getattr(self, name)
                continue
            value, prefix = getattr(self, name), groups[name].env_prefix_in(own)
            for inner in value.model_fields_set:
                yield f"{prefix}{inner}".upper(), getattr(value, inner)


def group(kind: type[SettingsGroup], description: str) -> Any:
    """A group field (made by `ProcessSettings` from the environment unless given)."""
    return Field(default=None, description=description)
