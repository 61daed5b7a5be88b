"""Reading a results.json number by its path (``"lesion_models[3].or"``): how the report's tests check that
every number the report shows is the one stored (the report itself reads typed results, never paths)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_PATH_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def lookup(document: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` of a JSON document; ``KeyError`` when a key or index is missing."""
    node: Any = document
    for m in _PATH_RE.finditer(path):
        key, index = m.group(1), m.group(2)
        try:
            if index is not None:
                if not isinstance(node, Sequence) or isinstance(node, str):
                    raise KeyError(path)
                node = node[int(index)]
            else:
                if not isinstance(node, Mapping):
                    raise KeyError(path)
                node = node[key]
        except (IndexError, KeyError):
            raise KeyError(f"results.json has no {path!r}") from None
    return node
