"""Finding the FlowSpec class in a user's file."""

from __future__ import annotations

import importlib.util
import os
import sys
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
        except Exception:
            del sys.modules[name]
            raise
    return pick_flow_class(module, path, flow_name)


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
