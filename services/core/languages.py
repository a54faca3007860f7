"""BCP-47 language codes as the services compare them: by primary subtag, case-insensitively."""

from __future__ import annotations

from services.core.errors import UnsupportedLanguage


def primary_subtag(code: str) -> str:
    """ "en-US" -> "en"; "zh_Hant_TW" -> "zh"."""
    return code.strip().replace("_", "-").split("-", 1)[0].lower()


def resolve(code: str, served: tuple[str, ...], service: str) -> str | None:
    """The served language a request asks for, or None to detect it; refuses the unserved."""
    if not code.strip():
        return None
    language = primary_subtag(code)
    if language not in served:
        shown = ", ".join(served)
        raise UnsupportedLanguage(
            f"language_code {code!r} is not served by {service}; it serves: {shown}"
        )
    return language


def metric_label(code: str) -> str:
    """A bounded label for metrics: "detect" for none, the primary subtag when it looks like
    one (2-3 letters), else "invalid", so clients cannot mint label values at will."""
    if not code.strip():
        return "detect"
    language = primary_subtag(code)
    return language if language.isalpha() and 2 <= len(language) <= 3 else "invalid"
