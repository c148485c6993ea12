"""Reading a config file's YAML safely: no duplicate keys, no alias bombs, short errors.

PyYAML's ``safe_load`` accepts a mapping that names a key twice (the last one silently wins,
so a pasted block can override a setting unseen), and it expands aliases without bound: a few
hundred bytes of nested aliases become gigabytes (the UI re-reads the config every 30 s). A
config is a hand-written file of a few hundred lines, so both are refused with an error that
names the file and the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tsad.errors import ConfigError

#: Aliases (``*name``) a config may use; the demo config uses none. Expansion beyond this many
#: is what an alias bomb looks like.
MAX_ALIASES = 50


def read_yaml(file: Path) -> Any:
    """The file's YAML document as plain data ({} when empty); ConfigError naming the file."""
    import yaml

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > MAX_ALIASES:
                    mark = self.peek_event().start_mark
                    raise ConfigError(f"{file}: line {mark.line + 1}: more than {MAX_ALIASES} "
                                      "YAML aliases (*name); write the values out instead")
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise ConfigError(
                        f"{file}: line {key_node.start_mark.line + 1}: key {key!r} appears "
                        f"twice in one mapping (first on line {seen[key]}); keep one")
                seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc}") from None
    try:
        return yaml.load(text, Loader=Loader) or {}  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(f"{file}: not valid YAML: {where}{first[0] if first else exc}") from None
