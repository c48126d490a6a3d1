"""Error types the CLI turns into a clear message and a non-zero exit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DealermlError", "DataError", "ConfigError", "hide_url_passwords", "AT_IN_CREDENTIALS", "at_in_credentials"]

# scheme://user:password@ - the password up to the first '@' (SQLAlchemy), and on over further '@'s
# while no '/', '?', '#', quote or space comes first: an http(s) client (requests, so MLflow) reads
# userinfo up to the authority's last '@', so 'https://u:p@ss@mlflow' has the password 'p@ss'
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<pw>[^\s@]*(?:@[^\s@/?#\"']*)*)@")
# scheme://...?...password=... - libpq's query-string form, which SQLAlchemy hands to psycopg
_QUERY_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s?#]*\?(?:[^\s#&]*&)*(?i:password)=)"
                             r"(?P<pw>[^\s&#\"']*)")
_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}")  # ${PGPASSWORD} in a config file
# A database URL whose user name or password holds a bare '@': SQLAlchemy reads the password up
# to its first '@' and the rest as the host, so the connection fails naming the password's tail as
# a host (and ``render_as_string(hide_password=True)`` shows that tail in clear)
AT_IN_CREDENTIALS = ("its user name or password holds '@', which ends the password in a URL (the rest would be read "
                     "as the host name): write each '@' in them as %40, also in a ${VAR} that holds the password")


def at_in_credentials(url: str) -> bool:
    """Whether SQLAlchemy reads the database URL ``url`` with a bare '@' of its user name or password
    as part of the host (:data:`AT_IN_CREDENTIALS`: its connection error would show the password's
    tail as the host); False for a URL it cannot parse (said by whatever opens it)."""
    try:
        from sqlalchemy.engine import make_url

        return "@" in (make_url(str(url)).host or "")
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads
        return False


def refuse_at_in_credentials(value: str | None, what: str) -> str | None:
    """A settings validator's check: ``value`` unchanged, or ValueError("not a valid <what>: ...") when it
    is a URL with a bare '@' in its user name or password (:func:`at_in_credentials`)."""
    if value is not None and "://" in value and at_in_credentials(value):
        raise ValueError(f"not a valid {what}: {AT_IN_CREDENTIALS}")
    return value


def _hide(m: re.Match[str]) -> str:
    return m.group(0) if _PLACEHOLDER.fullmatch(m.group("pw")) else f"{m.group('head')}***@"


def _hide_query(m: re.Match[str]) -> str:
    return m.group(0) if not m.group("pw") or _PLACEHOLDER.fullmatch(m.group("pw")) else f"{m.group('head')}***"


def hide_url_passwords(value: Any) -> Any:
    """``value`` with the password of every ``scheme://user:password@host`` URL in it as ``***``
    (and of ``scheme://host/db?password=...``):
    a string (a URL, a message quoting one), or the strings of a nested dict / list / tuple.
    For what is printed or logged (messages, MLflow params and artifacts), also of URLs that do
    not parse (``make_url(...).render_as_string(hide_password=True)`` raises on those)."""
    if isinstance(value, str):
        return _QUERY_PASSWORD.sub(_hide_query, _URL_PASSWORD.sub(_hide, value)) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: hide_url_passwords(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(hide_url_passwords(v) for v in value)
    return value


class DealermlError(Exception):
    """Base class for errors a user can act on (bad input, bad config)."""


class DataError(DealermlError):
    """A table, file, column or value breaks the data contract.

    The message names the file/table, the column, the rule and the offending values or rows.
    """


class ConfigError(DealermlError):
    """An experiment config is missing a field or has a bad value."""
