"""One bounded reader for every JSON and YAML file edgeclf reads from outside (artifacts.json,
pack.json, bundle.json, parity's reference.json, the metadata inside a .tflite or .onnx, watch's
state file, config and search-space YAML). Standard library plus PyYAML (imported only for YAML),
so the device side can use it.

What it guarantees before a value reaches the caller:
- size: at most `max_bytes` are read (a file is checked from stat first, then read with a cap);
- encoding: UTF-8 only (a BOM is refused too: none of our writers makes one);
- depth: at most MAX_DEPTH levels of nesting, checked before parsing (Python's json and PyYAML
  recurse, and a 100,000-deep file gave RecursionError);
- JSON: no NaN or Infinity (not JSON, and nonsense as a physical number: a NaN normalization
  gave plausible wrong answers) and no number that overflows to infinity; no duplicate keys
  (which one wins is up to the parser: a tampering vector);
- YAML: safe tags only, and at most MAX_NODES nodes counted with aliases expanded (an alias bomb
  of a few hundred bytes expands to gigabytes when anything walks or prints it);
- errors are one BoundedReadError line naming the file and the reason; `excerpt` shortens any
  value an error message shows.
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import Any

MAX_DEPTH = 64
MAX_NODES = 100_000
EXCERPT = 60


class BoundedReadError(ValueError):
    """The text cannot be used; the message names the source and the reason in one line."""


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """repr(value), cut to `limit` characters (with ...) and on one line: what an error may show of
    a value that came from outside. The repr of a huge value is never built whole."""
    if isinstance(value, (dict, list, tuple, set)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    if isinstance(value, (str, bytes)) and len(value) > 4 * limit:
        value = value[: 4 * limit]
    text = repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text(source: Path | str, max_bytes: int, what: str | None = None) -> str:
    """A file's text, refused when over max_bytes or not UTF-8."""
    name = what or str(source)
    return decode(_read_bytes(Path(source), max_bytes, name), max_bytes, name)


def _read_bytes(path: Path, max_bytes: int, name: str) -> bytes:
    """At most max_bytes + 1 of the file (the size is checked from stat first)."""
    try:
        if path.stat().st_size > max_bytes:
            raise BoundedReadError(f"{name}: over {_size(max_bytes)}")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise BoundedReadError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    return data


def decode(data: bytes | str, max_bytes: int, what: str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise BoundedReadError(f"{what}: over {_size(max_bytes)}")
    if data.startswith(b"\xef\xbb\xbf"):
        raise BoundedReadError(f"{what}: starts with a byte-order mark; save it as UTF-8 without one")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BoundedReadError(f"{what}: not UTF-8 text (byte {exc.start})") from None


def loads_json(data: bytes | str, what: str, max_bytes: int = 16 * 2**20, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text within the bounds above; raises BoundedReadError."""
    text = decode(data, max_bytes, what)
    depth = _json_depth(text)
    if depth > max_depth:
        raise BoundedReadError(f"{what}: nested {depth} levels deep, over the {max_depth} allowed")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_unique)
    except _Refused as exc:
        raise BoundedReadError(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BoundedReadError(f"{what}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # nesting that the pre-check counted differently (cannot happen; never a traceback)
        raise BoundedReadError(f"{what}: nested too deeply") from None


def read_json(source: Path | str, max_bytes: int = 16 * 2**20, what: str | None = None) -> Any:
    """A JSON file, read and parsed within the bounds; raises BoundedReadError."""
    name = what or str(source)
    return loads_json(_read_bytes(Path(source), max_bytes, name), name, max_bytes)  # decoded once, in loads_json


def expect_object(value: Any, what: str) -> dict:
    """value when it is a JSON object, else BoundedReadError naming what it is instead."""
    if not isinstance(value, dict):
        raise BoundedReadError(f"{what}: expected a JSON object, found {_kind(value)}")
    return value


def loads_yaml(text: str, what: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse YAML (safe tags only) within the bounds; raises BoundedReadError."""
    import yaml

    loader = _bounded_loader(yaml)(text)
    loader.max_depth = max_depth
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes = _expanded_nodes(node, yaml)
        if nodes > max_nodes:
            raise BoundedReadError(f"{what}: {nodes} nodes with its aliases expanded, over the {max_nodes} allowed")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BoundedReadError(f"{what}: not valid YAML ({shorten(problem, 80)}{where})") from None
    except _Refused as exc:
        raise BoundedReadError(f"{what}: {exc}") from None
    except RecursionError:
        raise BoundedReadError(f"{what}: nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml(source: Path | str, max_bytes: int = 2**20, what: str | None = None) -> Any:
    name = what or str(source)
    return loads_yaml(read_text(source, max_bytes, name), name)


class _Refused(Exception):
    pass


def _no_constant(name: str):
    raise _Refused(f"{name} is not a number JSON allows; give a finite number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {excerpt(text, 30)} is out of range")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"key {excerpt(key, 40)} appears twice in one object")
        out[key] = value
    return out


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _json_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, in linear time without recursion."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    depth = deepest = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


@functools.cache
def _bounded_loader(yaml):
    class Loader(yaml.SafeLoader):
        """SafeLoader that refuses nesting deeper than max_depth while it composes (PyYAML recurses)."""

        max_depth = MAX_DEPTH
        _depth = 0

        def compose_node(self, parent, index):
            self._depth += 1
            try:
                if self._depth > self.max_depth:
                    raise _Refused(f"nested over {self.max_depth} levels deep")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return Loader


def _expanded_nodes(root, yaml) -> int:
    """The number of nodes the document has once every alias is expanded, without expanding it:
    each node's count is computed once (iteratively, children before parents)."""
    counts: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in counts:
            continue
        if isinstance(node, yaml.ScalarNode):
            counts[id(node)] = 1
            continue
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        if ready:
            counts[id(node)] = 1 + sum(counts.get(id(child), 1) for child in children)
            if counts[id(node)] > 10 * MAX_NODES:  # enough to refuse; keeps the integers small
                return counts[id(node)]
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in counts)
    return counts[id(root)]


def shorten(text: str, limit: int = 80) -> str:
    """A message (not a value) on one printable line of at most `limit` characters."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text)).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 and n % 2**20 == 0 else f"{n} bytes"
