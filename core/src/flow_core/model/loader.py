"""Finding the FlowSpec class in a user's file."""

from __future__ import annotations

import importlib.util
import linecache
import os
import sys
import sysconfig
import traceback
from pathlib import Path

from flow_core.errors import FlowLoadError
from flow_core.model.flowspec import FlowSpec


def module_name_for(path: Path) -> str:
    """Import the file under its own stem (so pickled classes resolve in a notebook that
    imports it) unless that name is taken by another module."""
    stem = path.stem
    existing = sys.modules.get(stem)
    if stem.isidentifier() and (existing is None or getattr(existing, "__file__", None) == str(path)):
        return stem
    return f"_flow_user_{abs(hash(str(path)))}"


def load_flow_class(flow_file: str | os.PathLike, flow_name: str | None = None) -> type[FlowSpec]:
    path = Path(flow_file).absolute()
    if not path.is_file():
        raise FlowLoadError(f"there is no flow file at {path}")
    name = module_name_for(path)
    module = sys.modules.get(name)
    if module is None or getattr(module, "__file__", None) != str(path):
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            del sys.modules[name]
            raise FlowLoadError(f"{exc.filename}:{exc.lineno}: {exc.msg}") from None
        except Exception as exc:
            # The user's module (or one it imports) failed: their bug, reported where it
            # happened; --debug still shows the whole traceback through the cause.
            del sys.modules[name]
            raise FlowLoadError(import_failure(exc, path)) from exc
    return pick_flow_class(module, path, flow_name)


def import_failure(exc: BaseException, path: Path) -> str:
    """One sentence for an exception raised while importing the flow file ``path``: the
    file, line and statement where it happened and what to do about it."""
    where, statement = _failing_line(exc, path)
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return (f"{where}: {statement}there is no module named '{exc.name}'; install the package that "
                "provides it in this Python environment, or fix the import")
    if isinstance(exc, ImportError):
        return f"{where}: {statement}{exc}; fix the import or install what it needs"
    return (f"{where}: importing the flow file raised {type(exc).__name__}: {exc}; fix the code there "
            "(rerun with --debug for the traceback)")


def _failing_line(exc: BaseException, path: Path) -> tuple[str, str]:
    """``file:line`` of the deepest frame of the user's own code in the traceback, and its
    statement as "`import x` failed: ". Python's import machinery, the standard library,
    installed packages and Flow itself are skipped: when a package fails inside, the user's
    line that imported it is the one to show."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if _is_users(frame.filename)]
    if not frames:
        return str(path), ""
    frame = frames[-1]
    code = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
    return f"{frame.filename}:{frame.lineno}", (f"`{code}` failed: " if code else "")


def _is_users(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return False
    file = Path(filename)
    if "site-packages" in file.parts or "dist-packages" in file.parts:
        return False
    library = [sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib")] + [str(_FLOW_CORE)]
    return not any(file.is_relative_to(folder) for folder in library)


#: Flow's own package: its frames in a traceback are never the user's.
_FLOW_CORE = Path(__file__).resolve().parents[1]


def pick_flow_class(module, path: Path, flow_name: str | None) -> type[FlowSpec]:
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, FlowSpec) and value is not FlowSpec
        and value.__module__ == module.__name__
    ]
    if flow_name is not None:
        for cls in classes:
            if cls.__name__ == flow_name:
                return cls
        raise FlowLoadError(f"{path} defines no flow named {flow_name}")
    # A base class other flows in the file derive from is not itself the flow.
    leaves = [c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)]
    if len(leaves) == 1:
        return leaves[0]
    if not leaves:
        raise FlowLoadError(f"{path} defines no FlowSpec subclass")
    names = ", ".join(sorted(c.__name__ for c in leaves))
    raise FlowLoadError(f"{path} defines several flows ({names}); keep one flow per file")
