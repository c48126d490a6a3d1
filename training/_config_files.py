"""Reading an experiment config file for :mod:`training.config`: the YAML, ``${VAR}`` expansion and
the hints for a config path that is wrong.

``read_yaml_mapping`` (UTF-8, valid YAML, no key given twice in one mapping, a mapping at the top;
PyYAML's messages with URL passwords hidden), ``expand_env`` (``${VAR}`` / ``${VAR:-default}`` in
every string), ``yaml_files_hint`` / ``near_config_hint`` (a folder given, or a misspelt file
name) and ``close_keys`` (the known keys a misspelt one resembles).

Split from :mod:`training.config` to keep each module under ~500 lines; its names are re-exported
there (import them from :mod:`training.config`). Used by ``load_config`` and ``did_you_mean``
there, and by :mod:`training.data`, :mod:`training.experiment` (and its
:mod:`training._experiment_effective`), :mod:`training.tuning_config` and :mod:`training.tuning_study`
(through :mod:`training.config`). Imports nothing from it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from training.errors import ConfigError, hide_url_passwords

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, *, where: str = "", file: str = "<config>") -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of a nested YAML value."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            got = os.environ.get(name)
            if got is not None and (got != "" or default is None):
                return got
            if default is not None:
                return default
            raise ConfigError(
                f"{file}: key '{where or '<root>'}' uses ${{{name}}} but the environment variable "
                f"{name} is not set (give a default with ${{{name}:-value}})"
            )

        return _ENV_RE.sub(repl, value)
    if isinstance(value, dict):
        return {k: expand_env(v, where=f"{where}.{k}" if where else str(k), file=file) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, where=f"{where}[{i}]", file=file) for i, v in enumerate(value)]
    return value


def close_keys(key: Any, known: Any, n: int = 2) -> list[str]:
    """The keys of ``known`` a misspelt ``key`` most resembles (difflib, at most ``n``)."""
    import difflib

    return difflib.get_close_matches(str(key), [str(k) for k in known], n=n, cutoff=0.6)


def near_keys_text(key: Any, known: Any) -> str:
    """"; did you mean 'margin'?" for a misspelt ``key`` (:func:`close_keys`), else "; known keys: a, b"."""
    close = close_keys(key, known)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else f"; known keys: {', '.join(known)}"


def yaml_files_hint(folder: Path, n: int = 6) -> str:
    """' such as F (the folder holds a.yaml, b.yaml)' for a folder given as a config file, or
    ' such as experiments/mine.yaml (FOLDER holds no .yaml file)'."""
    try:
        found = sorted(x for x in folder.iterdir() if x.is_file() and x.suffix.lower() in (".yaml", ".yml"))
    except OSError:
        found = []
    if not found:
        return f" such as experiments/mine.yaml ({folder} holds no .yaml file)"
    more = f" and {len(found) - n} more" if len(found) > n else ""
    return f" such as {found[0]} (the folder holds {', '.join(x.name for x in found[:n])}{more})"


def near_config_hint(p: Path) -> str:
    """'; did you mean F?' for a config path that does not exist but resembles a YAML file beside it."""
    parent = p.parent
    if not parent.is_dir():
        return f" (the folder {parent} does not exist either)"
    try:
        names = [x.name for x in parent.iterdir() if x.is_file() and x.suffix.lower() in (".yaml", ".yml")]
    except OSError:
        return ""
    near = close_keys(p.name, names, n=1) or close_keys(p.stem, [Path(x).stem for x in names], n=1)
    if not near:
        return ""
    name = near[0] if near[0] in names else next(x for x in names if Path(x).stem == near[0])
    return f"; did you mean {parent / name}?"


def _yaml_problem(exc: Exception) -> str:
    """PyYAML's message without its quote of the line: the quote is cut to the column
    ('... s:LeakMe99@127.0.0.1:5432/test" x'), so a URL's password in it could not be hidden."""
    import yaml

    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return hide_url_passwords(str(exc))
    parts = [f"{exc.context} (line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else exc.context,
             exc.problem, f"at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"]
    return hide_url_passwords(" ".join(x for x in parts if x))


def _unique_keys_loader() -> type:
    """PyYAML's SafeLoader, except that a key given twice in one mapping is an error: PyYAML keeps
    the last silently, so a second ``order_lines:`` (or ``as_of:``) pasted below the first would
    replace it without a word."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *defaults' may be overridden
                continue
            key = loader.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the constructor says so
                continue
            if first is None:
                seen[key] = key_node.start_mark.line + 1
            else:  # also on one line: '{as_of: 2024-01-01, as_of: 2024-06-30}'
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice in one mapping (YAML would keep only the last one; "
                    f"remove or rename one): first at line {first}, again", key_node.start_mark)
        return loader.construct_mapping(node, deep=True)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return UniqueKeyLoader


def read_yaml_mapping(p: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file; ConfigError naming the file otherwise."""
    import yaml

    if p.is_dir():
        raise ConfigError(f"config {p} is a folder; expected a YAML file{yaml_files_hint(p)}")
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}{near_config_hint(p)}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a ValueError too: not to be read as the date message below
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} on line {line}); "
                          "save the config as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=_unique_keys_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {_yaml_problem(exc)}") from None
    except ValueError as exc:  # PyYAML's date resolver on e.g. 2024-13-01
        raise ConfigError(f"{p}: a value YAML reads as a date is not a valid date ({exc}); quote it or fix it") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping with keys name, data, ...; got {type(raw).__name__}")
    return raw
