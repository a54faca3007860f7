"""stt-suite: speech-to-text gRPC services over one shared serving core."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stt-suite")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
