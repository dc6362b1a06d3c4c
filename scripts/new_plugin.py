"""Start a Flow plugin: a copy of plugins/_template/ with its placeholder names replaced.

    python scripts/new_plugin.py flow-datastore-sqlite                 # → plugins/flow-datastore-sqlite
    python scripts/new_plugin.py flow-datastore-sqlite --into ~/src    # → ~/src/flow-datastore-sqlite

The backend's name is the distribution's last word (``sqlite``) unless ``--backend`` says
otherwise. The copy installs and passes its tests as it is; then make it yours.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "plugins" / "_template"
#: The template's own instructions, which a new plugin does not need.
NOT_COPIED = {"TEMPLATE.md"}
DISTRIBUTION = re.compile(r"flow(-[a-z][a-z0-9]*)+")
BACKEND = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def placeholders(distribution: str, backend: str) -> dict[str, str]:
    """The template's placeholder names, longest first, and what replaces each."""
    return {
        "flow-my-plugin": distribution,
        "flow_my_plugin": distribution.replace("-", "_"),
        "my-plugin": backend,
        "MyPlugin": "".join(part.capitalize() for part in backend.split("-")),
    }


def renamed(text: str, names: dict[str, str]) -> str:
    for old, new in names.items():
        text = text.replace(old, new)
    return text


def new_plugin(distribution: str, backend: str, into: Path) -> Path:
    """Copy the template to ``into/distribution``, renaming files and their contents."""
    if not DISTRIBUTION.fullmatch(distribution):
        raise SystemExit(f"'{distribution}' is not a plugin distribution name; use lower-case words joined by "
                         "dashes, starting with flow- (flow-datastore-sqlite)")
    if not BACKEND.fullmatch(backend):
        raise SystemExit(f"'{backend}' is not a backend name; use lower-case words joined by dashes (sqlite)")
    target = into / distribution
    if target.exists():
        raise SystemExit(f"{target} already exists; choose another name or remove it first")
    names = placeholders(distribution, backend)
    for source in sorted(TEMPLATE.rglob("*")):
        relative = source.relative_to(TEMPLATE)
        if source.is_dir() or "__pycache__" in relative.parts or str(relative) in NOT_COPIED:
            continue
        destination = target / renamed(str(relative), names)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(renamed(source.read_text(), names))
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("distribution", help="the new distribution's name, e.g. flow-datastore-sqlite")
    parser.add_argument("--backend", help="the backend's name (default: the distribution's last word)")
    parser.add_argument("--into", type=Path, default=REPO / "plugins", help="the folder to create it in")
    args = parser.parse_args(argv)
    target = new_plugin(args.distribution, args.backend or args.distribution.rsplit("-", 1)[-1], args.into)
    print(f"Created {target}. Next, in the environment Flow is installed in:\n"
          f"    pip install -e {target}\n"
          f"    pytest {target / 'tests'}")


if __name__ == "__main__":
    main()
