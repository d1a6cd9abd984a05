"""YAML -> Pack. A broken pack gives one PackError naming the file, the line, the rule and the field."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from civicaup.errors import PackError
from civicaup.policy.schema import Pack
from civicaup.policy.text import squash


def _node_at(node: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node:
    """The deepest YAML node along a pydantic error location (for its line number)."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            nxt = node.value[key]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
    return node


def _rule_id(data: Any, loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        try:
            return str(data["rules"][loc[1]].get("id") or f"#{loc[1] + 1}")
        except (KeyError, IndexError, TypeError, AttributeError):
            return f"#{loc[1] + 1}"
    return None


#: libyaml's safe loader when PyYAML has it (a pack parses in a tenth of the time), else the pure-Python one
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_pack(text: str, file: str) -> Pack:
    """Validate pack text; see `load_pack`."""
    try:
        loader = _LOADER(text)
        try:  # one parse: the node tree (for line numbers) and the data built from it
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PackError(str(getattr(exc, "problem", exc)), file=file,
                        line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict) or root is None:
        raise PackError("a pack is a YAML mapping", file=file)
    try:
        pack = Pack.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        node = _node_at(root, loc)
        field = ".".join(str(p) for p in loc if not isinstance(p, int)) or None
        raise PackError(err["msg"], file=file, line=node.start_mark.line + 1, rule=_rule_id(data, loc),
                        field=field) from None
    _check_quotes(pack, root, file)
    return pack


def _check_quotes(pack: Pack, root: yaml.Node, file: str) -> None:
    """Rules and exemptions quote their clause verbatim: a paraphrase is an error."""
    by_ref: dict[str, str] = {c.ref: " ".join(squash(s.text) for s in c.sentences) for c in pack.clauses}
    for kind, items in (("rules", pack.rules), ("exemptions", pack.exemptions)):
        for i, item in enumerate(items):
            if squash(item.quote) not in by_ref.get(item.clause, ""):
                node = _node_at(root, (kind, i, "quote"))
                raise PackError(f"quote is not verbatim text of clause {item.clause}", file=file,
                                line=node.start_mark.line + 1, rule=item.id if kind == "rules" else None,
                                field=f"{kind}.quote")


def load_pack(path: Path) -> Pack:
    """Read and validate one pack file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PackError(f"cannot read pack: {exc.strerror or exc}", file=str(path)) from None
    return parse_pack(text, str(path))
