"""Experiment configs: one YAML file under ``experiments/`` names the data and each capability's settings.

``load_config(path)`` reads the YAML, expands ``${VAR}`` / ``${VAR:-default}`` in every string,
validates it and resolves relative file paths against the config file's folder. Any unknown
key or bad value raises :class:`training.errors.ConfigError` naming the file and the key.

The ``data:`` section has one :class:`TableSource` per contract table (see
``training/contract.py``); ``order_lines`` is required. The capability sections (``demand``,
``churn``, ``dealers``, ``tuning``, ``promotion``, ``serving``) are free-form dicts here: each
capability validates its own section with its own model.

Reading the YAML file (``read_yaml_mapping``, ``expand_env``, the hints for a wrong config path,
``close_keys``) lives in :mod:`training._config_files`, the ``promotion:`` section's check and
``PROMOTION_METRICS`` in :mod:`training._config_promotion`; their names are re-exported here.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from training._config_files import (  # noqa: F401 - re-exported: public API and helpers of the commands
    _ENV_RE,
    _unique_keys_loader,
    _yaml_problem,
    close_keys,
    expand_env,
    near_config_hint,
    near_keys_text,
    read_yaml_mapping,
    yaml_files_hint,
)
from training._config_numbers import NoBoolNumbers
from training._config_promotion import (  # noqa: F401 - re-exported
    DEFAULT_PROMOTION_METRIC,
    PROMOTION_METRICS,
    _check_promotion_section,
)
from training.contract import TABLES
from training.errors import AT_IN_CREDENTIALS, ConfigError, at_in_credentials, hide_url_passwords

__all__ = ["TableSource", "DataConfig", "ExperimentConfig", "load_config", "expand_env", "did_you_mean", "close_keys", "section_errors"]


_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv", ".tsv.gz", ".tsv.bz2", ".tsv.zst", ".txt", ".txt.gz",
                 ".txt.bz2", ".txt.zst")
_TSV_SUFFIXES = (".tsv", ".tsv.gz", ".tsv.bz2", ".tsv.zst")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_DUCKDB_SUFFIXES = (".duckdb", ".ddb")


def _detect_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_DUCKDB_SUFFIXES):
        return "duckdb"
    return None


class TableSource(NoBoolNumbers):
    """Where one contract table comes from and how its columns map onto the contract.

    Exactly one of ``path`` (CSV / CSV.GZ / Parquet file or folder, or a DuckDB database file
    with ``table:`` or ``query:``) or ``url`` (any SQLAlchemy URL with ``table:`` or ``query:``).
    ``columns`` maps canonical name -> the column name in your data; canonical names you do not
    map are looked up under their own name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None
    format: Literal["csv", "parquet", "duckdb"] | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    date_format: str | None = None
    dayfirst: bool | None = None
    """Dates like 03/04/2024: True = day first, False = month first, None (not set) = decided by
    values only one order reads (25/04/2024); refused when no value decides it."""
    cancellation_prefix: str | None = None
    cancellation_window_days: float = Field(30.0, ge=0, allow_inf_nan=False)
    """order_lines only: a cancellation line takes its units off the latest earlier lines of the
    same account and SKU placed at most this many days before it; 0 = it only drops itself."""
    sep: str | None = None
    """CSV separator; default a tab for ``.tsv`` files (also compressed), else a comma."""
    decimal: Literal[".", ","] = "."
    """Decimal mark of numbers written as text: ``","`` reads 8,01 and 1.234,50 (with '.', a
    space or ' grouping thousands)."""
    thousands: Literal[",", ".", " ", "'"] | None = None
    """Thousands separator of numbers written as text (``","`` reads 1,234.50); none by default."""
    negatives: Literal["leading", "trailing", "parentheses"] = "leading"
    """How negative numbers written as text are marked: ``leading`` (-6, the default), ``trailing``
    (6-, as SAP exports them) or ``parentheses`` ((6), accounting formats)."""
    encoding: str = "utf-8"
    derive_accounts_from: dict[str, str] | None = None
    """order_lines only: build the accounts table from these order-line columns,
    ``{accounts column: your order-line column}``, e.g. ``{region: Country}``. A list of
    names is accepted and means ``{name: name}``."""

    @field_validator("path", mode="after")
    @classmethod
    def _resolve_path(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if v is None:
            return None
        v = Path(os.path.expanduser(str(v)))
        base = (info.context or {}).get("base_dir")
        if not v.is_absolute() and base is not None:
            v = Path(base) / v
        return Path(os.path.normpath(v))

    @field_validator("url", mode="after")
    @classmethod
    def _check_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            u = make_url(v)
        except ArgumentError as exc:
            raise ValueError(f"not a valid SQLAlchemy URL ({exc})") from None
        if at_in_credentials(v):  # reader:${PGPASSWORD}@db with a password 'pa@ss': host 'ss@db'
            raise ValueError(f"not a valid SQLAlchemy URL: {AT_IN_CREDENTIALS}")
        base = (info.context or {}).get("base_dir")
        # sqlite:///relative.db is relative to the config file, like paths.
        if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:" and base is not None:
            db = Path(u.database)
            if not db.is_absolute():
                v = u.set(database=str(Path(os.path.normpath(Path(base) / db)))).render_as_string(
                    hide_password=False
                )
        return v

    @field_validator("derive_accounts_from", mode="before")
    @classmethod
    def _list_to_mapping(cls, v: Any) -> Any:
        if isinstance(v, list):
            return {str(x): str(x) for x in v}
        return v

    @field_validator("columns", mode="before")
    @classmethod
    def _columns_to_str(cls, v: Any) -> Any:
        if isinstance(v, dict):
            # YAML turns an unquoted column name like 2019 into an int: accept it.
            return {str(k): str(val) if isinstance(val, int | float) else val for k, val in v.items()}
        return v

    @field_validator("sep")
    @classmethod
    def _one_char_sep(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if v in ("\\t", "tab"):
            return "\t"
        if len(v) != 1:
            raise ValueError("sep must be one character")  # the message adds '; got ...'
        return v

    @field_validator("date_format")
    @classmethod
    def _strftime_layout(cls, v: str | None) -> str | None:
        """A layout pandas cannot use stops here, naming the key, not as a traceback mid-load."""
        if v is None:
            return None
        if "%" not in v:
            raise ValueError("date_format is a strftime layout with % codes, e.g. '%d.%m.%Y %H:%M' for "
                             "31.01.2024 14:05 ('dd.mm.yyyy' is not one)")
        from datetime import datetime

        try:
            datetime.strptime("", v)
        except ValueError as exc:
            if "directive" in str(exc) or "stray %" in str(exc):
                raise ValueError(f"not a strftime layout ({exc}); use codes such as %Y %m %d %H %M %S, e.g. "
                                 "'%d.%m.%Y %H:%M'") from None
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(
                "unknown text encoding; use a Python codec name such as utf-8, utf-8-sig, latin-1 or cp1252"
            ) from None
        return v

    @model_validator(mode="after")
    def _check_source(self) -> TableSource:
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError(f"thousands and decimal must differ; both are {self.decimal!r}")
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of 'path' (a file) or 'url' (a SQLAlchemy URL)")
        if self.table is not None and self.query is not None:
            raise ValueError("give 'table' or 'query', not both")
        fmt = self.resolved_format()
        if self.url is not None or fmt == "duckdb":
            if self.table is None and self.query is None:
                where = "a database URL" if self.url is not None else f"the DuckDB file {self.path}"
                raise ValueError(f"{where} needs 'table:' or 'query:'")
        elif self.table is not None or self.query is not None:
            raise ValueError(f"'table'/'query' only apply to DuckDB files and URLs, not to a {fmt} file")
        if fmt is None:
            from training.user_files import workbook_problem

            book = workbook_problem(self.path) if self.path is not None else None
            if book:
                raise ValueError(f"cannot tell the format of {self.path}: {book}")
            raise ValueError(
                f"cannot tell the format of {self.path}: use a .csv/.csv.gz/.parquet/.duckdb name "
                "or set 'format: csv|parquet|duckdb'"
            )
        return self

    def resolved_format(self) -> str | None:
        """``csv``, ``parquet``, ``duckdb`` for files, ``sql`` for URLs."""
        if self.url is not None:
            return "sql"
        if self.format is not None:
            return self.format
        assert self.path is not None
        if self.path.is_dir():
            return "parquet"
        return _detect_format(self.path)

    def csv_sep(self) -> str:
        """The CSV separator to read with: ``sep``, else a tab for ``.tsv`` names, else a comma."""
        if self.sep is not None:
            return self.sep
        name = self.path.name.lower() if self.path is not None else ""
        return "\t" if name.endswith(_TSV_SUFFIXES) else ","

    def describe(self) -> str:
        """Human-readable name of the source for messages; passwords in URLs are masked."""
        if self.url is not None:
            from sqlalchemy.engine import make_url

            u = make_url(self.url).render_as_string(hide_password=True)
            what = f"table {self.table}" if self.table else "query"
            return f"{u} ({what})"
        if self.table:
            return f"{self.path} (table {self.table})"
        if self.query:
            return f"{self.path} (query)"
        return str(self.path)

    def source_column(self, canonical: str) -> str:
        """The user's column name for a canonical column (the same name when not mapped)."""
        return self.columns.get(canonical, canonical)


class DataConfig(BaseModel):
    """The ``data:`` section: one source per contract table; ``order_lines`` is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_lines: TableSource
    accounts: TableSource | None = None
    service_events: TableSource | None = None
    inventory: TableSource | None = None
    lead_times: TableSource | None = None
    promotions: TableSource | None = None
    """Planned campaigns (known ahead): with ``demand.drivers: [promo]`` on an order book they give the
    promo driver, the share of each period under a campaign, instead of the share sold on promotion."""
    as_of: datetime | None = None
    """Rows dated after this are 'future' and dropped; default: now. A date means its whole day."""

    @field_validator("as_of", mode="before")
    @classmethod
    def _date_ok(cls, v: Any) -> Any:
        if isinstance(v, date) and not isinstance(v, datetime):
            return datetime(v.year, v.month, v.day)
        if (isinstance(v, int | float) and not isinstance(v, bool)) or (
                isinstance(v, str) and re.fullmatch(r"\s*\d+(?:\.\d*)?\s*", v)):
            # pydantic reads a number as seconds since 1970: as_of: 20241231 became 1970-08-23, every row future
            raise ValueError("write the date as YYYY-MM-DD (e.g. 2024-12-31); a number would be read as seconds "
                             "since 1970-01-01")
        if isinstance(v, str) and re.match(r"^\s*\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b", v):
            # pydantic said "invalid character in year"; --as-of and --cutoff refuse these in words
            raise ValueError("write the date as YYYY-MM-DD (e.g. 2024-12-31); a date with the year last is "
                             "refused rather than guessed (day or month first?)")
        return v

    @model_validator(mode="after")
    def _check_tables(self) -> DataConfig:
        for name in TABLES:
            src = getattr(self, name)
            if src is None:
                continue
            known = {c.name for c in TABLES[name]}
            if name != "accounts":  # accounts may carry extra attribute columns
                unknown = sorted(set(src.columns) - known)
                if unknown:
                    raise ValueError(
                        f"{name}.columns: unknown canonical column(s) {unknown}; "
                        f"the {name} table has {sorted(known)}"
                    )
            if name != "order_lines":
                if src.derive_accounts_from is not None:
                    raise ValueError(f"{name}.derive_accounts_from only applies to order_lines")
                for key in ("cancellation_prefix", "cancellation_window_days"):
                    if key in src.model_fields_set:
                        raise ValueError(f"{name}.{key} only applies to order_lines")
        d = self.order_lines.derive_accounts_from
        if d is not None:
            if self.accounts is not None:
                raise ValueError(
                    "order_lines.derive_accounts_from and an accounts source are both given; use one"
                )
            if "account_id" in d:
                raise ValueError("order_lines.derive_accounts_from: account_id is always taken from order_lines")
        return self

    def sources(self) -> dict[str, TableSource]:
        """The configured tables, in contract order."""
        return {n: getattr(self, n) for n in TABLES if getattr(self, n) is not None}


class ExperimentConfig(NoBoolNumbers):
    """A whole experiment config (``experiments/*.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    seed: int = Field(42, ge=0, le=2**31 - 1)  # numpy generators refuse negatives, LightGBM takes int32
    data: DataConfig
    demand: dict[str, Any] = Field(default_factory=dict)
    churn: dict[str, Any] = Field(default_factory=dict)
    dealers: dict[str, Any] = Field(default_factory=dict)
    tuning: dict[str, Any] = Field(default_factory=dict)
    promotion: dict[str, Any] = Field(default_factory=dict)
    serving: dict[str, Any] = Field(default_factory=dict)
    config_path: Path | None = None
    """The resolved path of the YAML file this was loaded from (None when built in code)."""

    @field_validator("name")
    @classmethod
    def _named(cls, v: str) -> str:  # '' named MLflow runs '', tuning studies '-churn', the output folder experiments/
        if not v.strip():
            raise ValueError("the experiment needs a name (it names the MLflow runs, the tuning studies and the output "
                             "folder $DEALERML_HOME/experiments/<name>/): write a non-blank name, e.g. name: stallion")
        # checked here, for every command: only `experiment run` refused 'a/b' (and 'name: ../../x' wrote its
        # outputs outside the home); a name over 255 bytes failed as 'File name too long' mid-run
        if v.strip() in (".", "..") or any(c in v for c in "/\\") or not v.isprintable() or len(v.encode()) > 200:
            raise ValueError("the name is used for the MLflow run names, the tuning study names and the output folder "
                             "$DEALERML_HOME/experiments/<name>/: use at most 200 bytes (UTF-8), without / or \\ or "
                             "control characters, and not '.' or '..', e.g. name: stallion")
        return v

    @field_validator("demand", "churn", "dealers", "tuning", "promotion", "serving", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v

    @field_validator("promotion", mode="after")
    @classmethod
    def _check_promotion(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_promotion_section(v)
        return v


def _format_validation_error(err: ValidationError, file: str) -> str:
    return "\n".join([f"{file}: invalid experiment config", *_error_lines(err, "", None)])


def section_errors(err: ValidationError, section: str, model: type[BaseModel], *, src: Any = None) -> str:
    """The message of a ConfigError for a section of the config (``churn``, ``demand``,
    ``dealers``, ...) that ``model`` refused: every problem pydantic found, one line each, as
    ``load_config`` lists the ``data:`` section's - so a user with several mistakes fixes them in
    one go. Lines read ``key '<section>.<path>': <what is wrong>``: an unknown key says which
    key was meant (:func:`did_you_mean`), a bad value gives the rule and the value received.
    ``src`` (the config file), when given, leads the first line. A URL's password in a value is ``***``
    (``serving.alerts_target``, ``tuning.storage``), as in ``load_config``'s messages."""
    head = f"invalid '{section}' section"
    return hide_url_passwords("\n".join([f"{src}: {head}" if src else head, *_error_lines(err, section, model)]))


def _error_lines(err: ValidationError, section: str, model: type[BaseModel] | None) -> list[str]:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (section, *e["loc"]) if p != "") or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + did_you_mean(e["loc"], model)
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        elif e["type"] == "path_type":  # was "Input is not a valid path for <class 'pathlib.Path'>"
            msg = "Input should be a file path (text)"
        # "... a valid dictionary or instance of TableSource": a class name the user never wrote
        msg = re.sub(r" or instance of \w+$", " (key: value pairs)", msg)
        got = e.get("input")
        got_s = ""
        if e["type"] in ("missing", "extra_forbidden"):  # the key is what is wrong, not its value (a date too)
            pass
        elif isinstance(got, date):  # a YAML date: as written, not datetime.date(2024, 1, 1)
            got_s = f"; got {got.isoformat(sep=' ') if isinstance(got, datetime) else got.isoformat()}"
        elif not isinstance(got, dict | list):
            got_s = f"; got {got!r}"
        elif isinstance(got, dict | list) and e["type"].endswith("_type") and len(repr(got)) <= 80:
            got_s = f"; got {got!r}"  # a short list or mapping where one value was expected: path: [a.csv]
        lines.append(f"  key '{loc}': {msg}{got_s}")
    return lines


def did_you_mean(loc: tuple[Any, ...], model: type[BaseModel] | None = None) -> str:
    """'; did you mean 'columns'?' (or '; known keys: ...') for the misspelt key at ``loc`` of a
    pydantic ``extra_forbidden`` error; ``model`` is the one validated (default: the whole
    experiment config; a capability passes its section model, e.g. DemandSettings)."""
    parent: Any = ExperimentConfig if model is None else model
    for part in loc[:-1]:
        field = getattr(parent, "model_fields", {}).get(str(part))
        if field is None:
            return ""
        ann = field.annotation
        parent = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)),
                      None)
        if parent is None:
            return ""
    known = [k for k in parent.model_fields if k != "config_path"]
    return near_keys_text(loc[-1], known)


def load_config(path: str | os.PathLike[str]) -> ExperimentConfig:
    """Read, expand and validate an experiment config; raise ConfigError naming file and key."""

    p = Path(path).expanduser().resolve()
    raw = read_yaml_mapping(p)
    if "config_path" in raw:
        raise ConfigError(f"{p}: key 'config_path' is set by the loader; remove it from the file")
    raw = expand_env(raw, file=str(p))
    raw["config_path"] = p
    try:
        return ExperimentConfig.model_validate(raw, context={"base_dir": p.parent})
    except ValidationError as err:
        # the values quoted may be URLs with a password (expanded from ${PGPASSWORD} too)
        raise ConfigError(hide_url_passwords(_format_validation_error(err, str(p)))) from None
