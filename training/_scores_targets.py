"""What a score target is and the checks made before any work: ``_kind`` (DuckDB / SQLite file,
SQLAlchemy URL, .csv / .parquet file; ``database=True``: no file), ``resolve_out`` (a CLI ``--out`` into
target and table), ``score_destination`` (``score churn`` / ``score dealers``' ``--out`` and ``--target``),
``check_target`` (a folder, a path below a file, no write permission, a URL that does not parse:
refused before the scoring), ``target_errors``, ``describe_target`` and the message helpers
``_masked`` (passwords hidden) and ``_short`` (a driver error's first line). Every refusal names the
option (``--out``, ``--target``, ``--churn-scores``) or config key the target was given as, and its value.

Split from :mod:`training.scores` (which opens the connections and writes) to keep each module
under ~500 lines; it imports neither that module nor :mod:`training._scores_atomic`. Private
helper module of :mod:`training.scores`, which re-exports every name here: import them from there
(the CLI's churn / dealers commands, the alerts store, tuning and tracking do).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from training.errors import (
    AT_IN_CREDENTIALS,
    ConfigError,
    at_in_credentials,
    hide_url_passwords,
)

_DUCKDB_EXT = (".duckdb", ".ddb")
_SQLITE_EXT = (".sqlite", ".sqlite3", ".db")
_FILE_EXT = (".csv", ".parquet")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DATABASE_FORMS = "a DuckDB file (.duckdb/.ddb), a SQLite file (.sqlite/.sqlite3/.db) or a SQLAlchemy URL"


def _kind(target: str | Path, what: str = "score target", *, database: bool = False, why: str = "") -> str:
    """``what`` names the target in the message (the option a command took it from, e.g. ``--target``).
    ``database``: only a database is taken (``score churn --target``, the TARGET of ``--out TARGET#table``,
    ``dealerml alerts``): a .csv / .parquet file is refused, and the message lists only the forms taken,
    after ``why`` (e.g. "alerts keep their state in a database; ")."""
    t = str(target)
    if "://" in t:
        return "sqlite" if t.startswith("sqlite") else "sqlalchemy"
    low = t.lower()
    if low.endswith(_DUCKDB_EXT):
        return "duckdb"
    if low.endswith(_SQLITE_EXT):
        return "sqlite"
    if low.endswith(_FILE_EXT) and not database:
        return "file"
    if database:
        raise ConfigError(f"{what} {t!r}: {why}expected {DATABASE_FORMS}"
                          + (", not a .csv / .parquet file" if low.endswith(_FILE_EXT) else ""))
    raise ConfigError(
        f"{what} {t!r}: expected a DuckDB file (.duckdb/.ddb), a SQLite file "
        f"(.sqlite/.sqlite3/.db), a .csv/.parquet file or a SQLAlchemy URL"
    )


def _check_ident(table: str) -> str:
    if not _IDENT.match(table or ""):
        hint = ("; for a PostgreSQL schema put it on the URL's search path instead: "
                "postgresql+psycopg://user@host/db?options=-csearch_path%3Dmy_schema#table") if "." in (table or "") else ""
        raise ConfigError(
            f"table name must be letters, digits and underscores (max 63, not starting with a digit); got {table!r}{hint}"
        )
    return table


def resolve_out(out: str, default_target: str | Path, option: str = "--out",
                default_what: str | None = None, *, write: bool = False,
                elsewhere: str | None = None) -> tuple[str, str | None]:
    """Turn a CLI ``--out TABLE_OR_FILE`` into ``(target, table)``.

    ``scores.csv`` / ``scores.parquet`` -> that file; ``churn_scores`` -> that table in
    ``default_target``; ``URL#table`` or ``file.duckdb#table`` -> that table there (a database, not a
    .csv / .parquet file). A bare name that is an existing folder or file here (``--out in`` beside a
    folder ``in``) is refused: the user most likely meant that path, not a table in the default database.
    Each refusal names ``option`` and its value; ``default_what`` names ``default_target`` (``--target``
    when the user gave it as that option; default: "<option> <value>: the default database").
    ``write``: the target is also checked for write permission (:func:`check_target`).
    ``elsewhere``: how to name another database, said when the default one cannot be (a folder at its path);
    default: ``option`` as DATABASE#table.
    """
    given = f"{option} {hide_url_passwords(out)}"
    if "#" in out:
        target, table = out.rsplit("#", 1)
        check_target(target, write=write, what=f"{given}: the database", database=True)
        return target, _check_ident(table)
    if out.lower().endswith(_FILE_EXT):
        check_target(out, write=write, what=option)
        return out, None
    here = Path(out).expanduser() if out else None
    if here is not None and (here.is_dir() or here.is_file()):
        kind = "a folder" if here.is_dir() else "a file without a .csv or .parquet suffix"
        path_fix = (f"for a score file in that folder give {here / 'scores.csv'} (or .parquet)" if here.is_dir()
                    else "a score file must end in .csv or .parquet")
        table_fix = (f"; for a table of that name give {describe_target(default_target, out)}" if _IDENT.match(out)
                     else "")
        raise ConfigError(f"{option} {out}: {out!r} is {kind} here, but a name without a .csv / .parquet suffix "
                          f"is read as a table name in {describe_target(default_target)}; {path_fix}{table_fix}")
    if not _IDENT.match(out or ""):
        raise ConfigError(
            f"{option} {out!r}: neither a score file nor a table name: a file must end in "
            f"{' or '.join(_FILE_EXT)}; a table name is letters, digits and underscores (max 63, not "
            f"starting with a digit, e.g. churn_scores); a table in another database is TARGET#table "
            f"(TARGET a .duckdb/.sqlite file or a SQLAlchemy URL)"
        )
    if default_what is None:  # the default database: how to name another, and (the usual one) another home
        from training import paths

        elsewhere = elsewhere or f"name another database as {option} DATABASE#{out} (e.g. {option} scores.duckdb#{out})"
        if Path(default_target) == paths.scores_db():
            elsewhere += ", or point DEALERML_HOME at another folder"
    check_target(default_target, write=write, what=default_what or f"{given}: the default database", database=True,
                 instead=elsewhere if default_what is None else "")
    return str(default_target), out


def score_destination(out: str, target: str | None = None, target_option: str | None = None) -> tuple[str, str | None]:
    """``(target, table)`` that ``score churn`` / ``score dealers`` (and an experiment's score steps) write
    ``--out`` to: a table name goes in ``--target`` (``score churn``; a database, checked even when ``--out``
    names a file or TARGET#table, so a mistyped one is not passed over in silence), else in
    ``$DEALERML_HOME/dealerml.duckdb``. Refused before any work, named as the option it came from.
    ``target_option``: the command's option for another database (``score churn``: --target), named when the
    default one cannot be used; without it, ``--out DATABASE#table``."""
    from training import paths

    if target is not None:
        check_target(target, write=False, what="--target", database=True)
    elsewhere = (f"name another database with {target_option} (e.g. {target_option} scores.duckdb)"
                 if target_option else None)
    return resolve_out(out, target or paths.scores_db(), default_what="--target" if target is not None else None,
                       write=True, elsewhere=elsewhere)


def _local_path(target: str | Path) -> Path | None:
    """The file a target writes (score file, DuckDB / SQLite file); None for a server URL."""
    t = str(target)
    if "://" not in t:
        return Path(t)
    if t.startswith("sqlite") and "///" in t:
        rest = t.split("///", 1)[1].split("?", 1)[0]
        return Path(rest) if rest and rest != ":memory:" else None
    return None


def check_target(target: str | Path, *, write: bool = True, what: str = "score target", database: bool = False,
                 why: str = "", instead: str = "") -> str | Path:
    """Refuse, before any work, a target file that cannot be: a folder, a path below a file,
    and (``write``) a folder or file without write permission. Raises ConfigError naming it as
    ``what`` (default "score target"; the CLI passes the option it was given as, e.g. "--target").
    ``database`` (and ``why``): only a database is taken (:func:`_kind`); a folder's hint names a file of
    the kind the target names (scores.csv for a score file, dealerml.duckdb for a DuckDB file, ...).
    ``instead``: how to give another target, said after a folder's fix (a default target: the option or
    config key that names another; default: a file of its kind inside the folder)."""
    kind = _kind(target, what, database=database, why=why)
    if kind in ("sqlalchemy", "sqlite") and "://" in str(target):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:  # a port that is not a number raised ValueError only at connect, after all the scoring
            make_url(str(target))
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(f"{what} {_masked(str(target))}: not a valid database URL "
                              f"({hide_url_passwords(_short(exc))})") from None
        if at_in_credentials(str(target)):  # a password 'pa@ss': host 'ss@db', a connect error after all the scoring
            raise ConfigError(f"{what} {_masked(str(target))}: not a valid database URL ({AT_IN_CREDENTIALS})")
    path = _local_path(target)
    if path is None:
        return target
    if path.is_dir():
        raise ConfigError(_folder_text(target, path, kind, what, instead))
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{what} {target}: {parent} is a file, not a folder")
            if write and not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"{what} {target}: no permission to write in the folder {parent}")
            break
    if write and path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {target}: the file is not writable (permission denied)")
    return target


def _folder_text(target: str | Path, path: Path, kind: str, what: str, instead: str) -> str:
    """A folder where the target's file goes (a folder named dealerml.duckdb in $DEALERML_HOME): what is
    there, and what to do. It was "is a folder; give a DuckDB file inside it (e.g. .../dealerml.duckdb/
    dealerml.duckdb)", for a default the user never gave, and without saying the folder is in the way."""
    if kind == "file":
        name, example = "a .csv / .parquet score file", str(path / "scores.csv")
    else:  # a database of the kind it names: x.duckdb/dealerml.duckdb, sqlite:///x.db/dealerml.db
        name = "a DuckDB file" if kind == "duckdb" else "a SQLite file"
        example = str(path / f"dealerml{path.suffix.lower() or '.db'}")
        if "://" in str(target):
            example = f"{str(target).split('///', 1)[0]}///{example}"
    try:
        entries = sorted(p.name for p in path.iterdir())
    except OSError:  # no permission to list it: said as a folder
        entries = None
    held = ("" if entries is None else " (empty)" if not entries else
            f" holding {len(entries):,} {'entry' if len(entries) == 1 else 'entries'}"
            f"{', e.g.' if len(entries) > 3 else ':'} {entries[:3]}")
    return (f"{what} {_masked(str(target))} is a folder{held}, not {name}: the file is made (or read) at that "
            f"path, so remove or rename the folder, or {instead or f'give {name} inside it (e.g. {example})'}")


def target_errors() -> tuple[type[BaseException], ...]:
    """What a database or the file system raise while a target is written."""
    import duckdb
    from sqlalchemy.exc import SQLAlchemyError

    return (OSError, duckdb.Error, SQLAlchemyError)


def describe_target(target: str | Path, table: str | None = None) -> str:
    """``target#table`` with any password masked (for messages)."""
    return f"{_masked(str(target))}{'#' + table if table else ''}"


def _masked(url: str) -> str:
    """A database URL with its password hidden (for messages)."""
    try:
        from sqlalchemy.engine import make_url

        if not at_in_credentials(url):  # else SQLAlchemy took the password's tail for the host: shown in clear
            return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a file path, or a URL that does not parse (its password too)
        pass
    return hide_url_passwords(url)


def _short(exc: BaseException) -> str:
    """The first line of an error (driver messages run to several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
