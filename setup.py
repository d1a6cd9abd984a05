"""Builds civicaup's one C extension, the Squid helper's compiled per-line path (Cython); everything else
about the package is in pyproject.toml.

The extension is optional: if it cannot be compiled (no C compiler or Python headers), the package installs
without it and the helper answers the same requests in pure Python, saying so once in its log.
"""
from __future__ import annotations

import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

PYX = "src/civicaup/channels/web/_fastpath.pyx"


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: the pure-Python path does the same work."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - a missing compiler is not an install failure
            _warn(exc)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _warn(exc)


_warned: list[str] = []


def _warn(exc: Exception) -> None:
    if not _warned:  # once: the first cause is the one to fix
        _warned.append(str(exc))
        print(f"civicaup: the compiled Squid helper path was not built ({exc}); the helper will decide in "
              "pure Python", file=sys.stderr)


def _extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError as exc:  # Cython is in build-system.requires; without it, no extension
        _warn(exc)
        return []
    from setuptools import Extension

    ext = Extension("civicaup.channels.web._fastpath", [PYX])
    return cythonize([ext], compiler_directives={"language_level": "3"}, quiet=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
