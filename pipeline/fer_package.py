"""Is the `fer` that Python finds this project's?

fer-detect's expression stage is the import package `fer`, the same name as the popular PyPI
package `fer` (Justin Shenk's). Both cannot live in one environment: installed side by side, one
shadows the other or its files overwrite the other's, and whichever loses fails with an import
error that names neither. The design keeps the name (README: "The name `fer`"); this module turns
the clash into one clear line with the remedy. It imports nothing from `fer`, so it can run before.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

#: Modules only this project's `fer` has (the PyPI package has none of them).
OURS = ("labels.py", "metadata.py", "predict.py", "preprocess.py")
REMEDY = ("keep the two in separate virtual environments (python -m venv ~/.venvs/fer-detect, then "
          "~/.venvs/fer-detect/bin/pip install fer-detect's folder; `make demo` builds one)")


def _ours(folder: str) -> bool:
    return all((Path(folder) / name).is_file() for name in OURS)


def wrong_fer() -> str | None:
    """Why the `fer` package Python would import is not fer-detect's, or None when it is."""
    try:
        spec = importlib.util.find_spec("fer")  # locates it without running its __init__
    except (ImportError, ValueError) as e:
        return f"the Python package 'fer' cannot be located ({e}); reinstall fer-detect"
    if spec is None:
        return "the Python package 'fer' (fer-detect's expression stage) is missing; reinstall fer-detect"
    folders = list(spec.submodule_search_locations or [])
    where = spec.origin or (folders[0] if folders else "?")
    if not any(_ours(folder) for folder in folders):
        return (f"the Python package 'fer' found first, {where}, is not fer-detect's but another "
                f"project's with the same name (PyPI's 'fer'?); {REMEDY}")
    try:
        other = importlib.metadata.distribution("fer")  # PyPI's 'fer' is installed here too
    except importlib.metadata.PackageNotFoundError:
        return None
    origin = Path(spec.origin).resolve() if spec.origin else None
    theirs = {Path(str(other.locate_file(f))).resolve() for f in other.files or []}
    if origin in theirs:  # its files overwrote ours: its __init__ would run
        return (f"PyPI's 'fer' {other.version} is installed in this environment and its files "
                f"replaced fer-detect's own 'fer' package ({where}); {REMEDY}")
    return None


def exit_if_wrong_fer(command: str) -> None:
    """For a console script, before it imports `fer`: one line and exit 1 instead of a traceback."""
    problem = wrong_fer()
    if problem:
        print(f"{command}: {problem}", file=sys.stderr)
        raise SystemExit(1)


def require_our_fer() -> None:
    """For the Python API: an ImportError that says what is wrong and what to do."""
    problem = wrong_fer()
    if problem:
        raise ImportError(f"fer-detect: {problem}")
