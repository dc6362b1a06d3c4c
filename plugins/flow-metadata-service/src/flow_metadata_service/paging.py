"""Cursor pages for every listing: ``?_limit=N&_cursor=C``."""

from __future__ import annotations

from typing import Any


class Page:
    """``?_limit=N&_cursor=C``: at most N rows after cursor C (the last row's sort key)."""

    def __init__(self, limit: int | None = None, cursor: Any = None):
        self.limit = limit
        self.cursor = cursor

    def sql(self, key: str, args: list, descending: bool = False, then: str = "") -> tuple[str, str]:
        """(extra WHERE condition, ORDER BY ... LIMIT ...) for a listing sorted on ``key``."""
        where = ""
        if self.cursor is not None:
            args.append(self.cursor)
            where = f" AND {key} {'<' if descending else '>'} ${len(args)}"
        tail = f" ORDER BY {key}{' DESC' if descending else ''}{', ' + then if then else ''}"
        if self.limit is not None:
            args.append(self.limit + 1)  # one more tells whether there is a next page
            tail += f" LIMIT ${len(args)}"
        return where, tail

    def cut(self, rows: list, key: str) -> tuple[list, Any]:
        """(this page's rows, the cursor of the next page or None)."""
        if self.limit is None or len(rows) <= self.limit:
            return rows, None
        rows = rows[: self.limit]
        return rows, rows[-1][key]
