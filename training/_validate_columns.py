"""Column helpers of :mod:`training.validate` shared by every kind of check: text and ids as Arrow
strings (trimmed, '123.0' -> '123'), the message pieces (``_from``, ``_first_rows``, examples),
required/empty-column checks, duplicate masks and the unknown-id hint.

Numbers (currency, commas, infinities, flags) live in :mod:`training._validate_numbers` and
dates in :mod:`training._validate_dates`; both build on this module, which imports neither.
Private helper module of :mod:`training.validate` (import the public names from there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from training.errors import DataError

_FATAL_SHARE = 0.5  # a numeric/date column whose non-empty values are mostly unparseable is fatal


def _pa_str(s: pd.Series):  # type: ignore[no-untyped-def]
    """Text values of a non-numeric column as a pyarrow string array: trimmed, '' -> null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_string(s.dtype.pyarrow_dtype):
        arr = s.array.__arrow_array__()  # zero-copy: file sources arrive as Arrow strings
    elif isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_large_string(s.dtype.pyarrow_dtype):
        arr = s.array.__arrow_array__().cast(pa.string())
    else:
        try:
            arr = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects (ints, bytes ...): print them
            arr = pa.array(s.map(lambda v: None if _isna(v) else str(v)).to_numpy(dtype=object), type=pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _pa_to_series(arr, index: pd.Index) -> pd.Series:  # type: ignore[no-untyped-def]
    return pd.Series(_arrow_to_objects(arr), index=index, dtype=object)


def _to_str(s: pd.Series) -> pd.Series:
    """Values as stripped ``str`` (object dtype), missing as None/NaN; float 17850.0 -> '17850'."""
    if pd.api.types.is_float_dtype(s.dtype):
        return _pa_to_series(_id_arrow(s)[0], s.index)
    if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("string").astype(object).where(s.notna(), np.nan)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype(str).where(s.notna(), np.nan).astype(object)
    return _pa_to_series(_pa_str(s), s.index)


_FLOATY_ID = r"^(-?\d+)\.0+$"

_NULL_IDS = ["NULL", "null", "Null", "#N/A", "N/A", "n/a", "#NV", "#NULL!", "#VALUE!", "#REF!", "#NAME?", "#DIV/0!",
             "#NUM!", "NaN", "nan", "None",
             # Excel's #N/A, #VALUE!, #REF!, #NAME? in Dutch, Italian / Polish, German, French, Spanish
             "#N/B", "#N/D", "#N/D!", "#WAARDE!", "#VERW!", "#NAAM?", "#WERT!", "#BEZUG!", "#VALEUR!", "#NOM?",
             "#VALORE!", "#RIF!", "#NOME?", "#ARG!", "#ADR!", "#NAZWA?", "#¡VALOR!", "#¡REF!", "#¿NOMBRE?",
             # 'not given' as German and Dutch exports write it
             "k.A.", "k. A.", "n.v.", "n.b."]
"""Id cells that mean 'no id': a database's NULL or a pandas NaN / None written as text, the error
values a spreadsheet writes for a formula that found nothing (#N/A; '#NV' in German, '#N/B' in Dutch,
'#N/D' in Italian: a Dutch export's 91 lines without a customer were one account '#N/B') and the
German / Dutch 'not given' (k.A., n.v.). Read as empty ids
(missing_account, missing_sku ...), they no longer make one account of every line without a customer
(21,538 of 60,000 Online Retail lines exported with 'NULL' were one account 'NULL', scored for churn)."""


def _id_arrow(s: pd.Series):  # type: ignore[no-untyped-def]
    """(ids as an Arrow string array, numpy mask of values changed from '123.0' / float 123.0 to '123')."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype="float64")
        ok = ~np.isnan(v)
        integral = ok & (np.abs(v) < 1e15)
        integral[integral] = v[integral] == np.floor(v[integral])
        arr = pa.array(np.where(integral, v, 0).astype(np.int64), mask=~integral).cast(pa.string())
        other = ok & ~integral
        if other.any():  # non-integral float ids: rare, print them
            arr = pc.replace_with_mask(arr, pa.array(other), pa.array([repr(float(x)) for x in v[other]], pa.string()))
        return arr, integral
    if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return _pa_str(_to_str(s)), np.zeros(len(s), dtype=bool)
    arr = _pa_str(s)
    null_word = pc.fill_null(pc.is_in(arr, value_set=pa.array(_NULL_IDS)), False)
    if pc.any(null_word).as_py():  # 'NULL', '#N/A' ... are no id: the empty id of every line without one
        arr = pc.if_else(null_word, pa.scalar(None, pa.string()), arr)
    mask = pc.fill_null(pc.match_substring_regex(arr, _FLOATY_ID), False)
    changed = mask.to_numpy(zero_copy_only=False)
    if changed.any():
        arr = pc.if_else(mask, pc.replace_substring_regex(arr, r"\.0+$", ""), arr)
    return arr, changed


def _normalise_id(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(ids as str, mask of values changed from '123.0' (or float 123.0) to '123')."""
    arr, changed = _id_arrow(s)
    return _pa_to_series(arr, s.index), pd.Series(changed, index=s.index)


def _is_null(x: Any) -> np.ndarray:
    import pyarrow.compute as pc

    if isinstance(x, pd.Series):
        return x.isna().to_numpy()
    return pc.is_null(x).to_numpy(zero_copy_only=False)


def _take(x: Any, order: np.ndarray) -> np.ndarray:
    """Rows ``order`` of a Series or Arrow array as a numpy array (text -> object of str)."""
    if isinstance(x, pd.Series):
        return x.to_numpy()[order]
    return _arrow_to_objects(x.take(order))


def _arrow_to_objects(arr) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Arrow text -> numpy object array with ONE Python str per distinct value (ids repeat a
    lot: this is ~8 bytes a row instead of ~60)."""
    import pyarrow.compute as pc

    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    enc = pc.dictionary_encode(arr)
    uniques = np.append(enc.dictionary.to_numpy(zero_copy_only=False).astype(object), None)
    idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    return uniques[idx]


def _startswith(s: Any, prefix: str) -> np.ndarray:
    import pyarrow.compute as pc

    arr = _pa_str(s) if isinstance(s, pd.Series) else s
    return pc.fill_null(pc.starts_with(arr, prefix), False).to_numpy(zero_copy_only=False)


def _lower(s: pd.Series) -> pd.Series:
    import pyarrow.compute as pc

    return _pa_to_series(pc.utf8_lower(_pa_str(s)), s.index)


def _examples_values(raw: pd.Series, mask: np.ndarray, n: int = 3) -> list[str]:
    vals = raw[mask].dropna().astype(str).unique()[:n]
    return [repr(v) for v in vals]


def _first_rows(mask: np.ndarray, n: int = 5) -> str:
    """'first rows [..]; 1 = the first data row' for the rows where ``mask`` holds."""
    return f"first rows {(np.flatnonzero(mask)[:n] + 1).tolist()}; 1 = the first data row"


def _from(col: str, mapping: Mapping[str, str]) -> str:
    user = mapping.get(col, col)
    return f" (column '{user}')" if user != col else ""


def _missing_required(df: pd.DataFrame, cols: Sequence[str], *, table: str, source: str, mapping: Mapping[str, str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        parts = [f"'{c}'" + (f" (mapped from '{mapping[c]}')" if mapping.get(c, c) != c else "") for c in missing]
        raise DataError(
            f"{source}: {table} is missing required column(s) {', '.join(parts)}; "
            f"columns present: {list(df.columns)}"
        )


def _check_not_empty(df: pd.DataFrame, *, table: str, source: str) -> None:
    if len(df) == 0:
        raise DataError(f"{source}: {table} is empty (0 rows); expected at least one row")


def _check_not_all_missing(s: Any, *, col: str, table: str, source: str, mapping: Mapping[str, str]) -> None:
    if _is_null(s).all():
        raise DataError(
            f"{source}: {table}.{col}{_from(col, mapping)} is empty in all {len(s):,} rows; it is required"
        )


def _codes(s: pd.Series) -> np.ndarray:
    """Integer codes with equal codes <=> equal values (missing = -1), without Python objects
    for Arrow text columns."""
    if isinstance(s.dtype, pd.ArrowDtype):
        import pyarrow.compute as pc

        arr = s.array.__arrow_array__()
        arr = arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr
        idx = pc.dictionary_encode(arr).indices
        return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return pd.factorize(s, use_na_sentinel=True)[0].astype(np.int64)


def _dup_mask(raw: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Exact duplicates of an earlier row over ``cols`` (compared through per-column codes)."""
    codes = [_codes(raw[c]) for c in cols]
    h = np.zeros(len(raw), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in codes:  # a 64-bit row hash finds the candidates ...
            h = h * np.uint64(1_000_003) + pd.util.hash_array(c)
    cand = np.flatnonzero(pd.Series(h).duplicated(keep=False).to_numpy())
    out = np.zeros(len(raw), dtype=bool)
    if len(cand):  # ... and the exact codes decide among them
        out[cand] = pd.DataFrame({i: c[cand] for i, c in enumerate(codes)}).duplicated(keep="first").to_numpy()
    return out


def _str_col(
    raw: pd.DataFrame, col: str, default: str | None, defaults: dict[str, str], fixes: dict[str, tuple[np.ndarray, str]]
) -> pd.Series:
    """An optional text column: filled with ``default`` where missing (a fix) or absent (a default)."""
    if col not in raw.columns:
        if default is not None:
            defaults[col] = default
        return pd.Series(default, index=raw.index, dtype=object)
    s = _to_str(raw[col])
    if default is not None:
        miss = s.isna().to_numpy()
        if miss.any():
            fixes[f"{col}_filled"] = (miss, f"empty {col} set to {default!r}")
            s = s.where(~miss, default)
    return s.astype(object)


def unknown_id_hint(ids: Any, unknown: np.ndarray, known: Any, *, table: str, col: str = "account_id",
                    other: str = "the accounts table") -> str | None:
    """When at least half of a table's ids are not in the other table, a sentence showing ids
    of both, so a format mismatch ('0012347' vs '12347', 'K17' vs '17') is visible; else None."""
    unknown = np.asarray(unknown, dtype=bool)
    n_unknown = int(unknown.sum())
    if n_unknown == 0:
        return None
    vals = ids if isinstance(ids, pd.Series) else pd.Series(ids.to_pylist(), dtype=object)  # pandas or pyarrow
    present = int(vals.notna().sum())
    zeros = _zero_padded_matches(vals[unknown], known)
    if n_unknown < 0.5 * present:
        if not zeros:
            return None
        pairs, n_ids, n_rows = zeros
        return (f"{n_rows:,} {table} rows ({n_ids:,} {col} value(s)) are not in {other} only because of leading "
                f"zeros (e.g. {pairs}) and are dropped as unknown_account: ids are compared as text, so '007' "
                "and '7' differ: write the id the same way in both tables")
    ex = sorted({str(v) for v in vals[unknown]})[:3]
    kn = sorted({str(v) for v in known})[:3]
    return (f"{n_unknown:,} of {present:,} {table} rows have {'an' if col[0] in 'aeiou' else 'a'} {col} that is not in {other} (e.g. {ex}; "
            f"its ids look like {kn}); ids are compared as text, so '007' and '7' differ: "
            "write the id the same way in both tables")


def _zero_padded_matches(unknown_ids: pd.Series, known: Any) -> tuple[str, int, int] | None:
    """Unknown ids that equal a known id once leading zeros are stripped ('123' vs '00123'):
    (up to three 'unknown' vs 'known' pairs, how many such ids, how many rows), or None.

    Below the half-of-the-rows threshold of ``unknown_id_hint`` such ids would otherwise be
    dropped as ``unknown_account`` with nothing saying why (a few accounts zero-padded by one
    system and not the other)."""
    unknown_ids = unknown_ids.dropna().astype(str)
    if unknown_ids.empty:
        return None
    by_stripped: dict[str, str] = {}
    for k in sorted({str(v) for v in known}):
        by_stripped.setdefault(k.lstrip("0") or "0", k)
    stripped = unknown_ids.str.lstrip("0").replace("", "0")
    hit = stripped.isin(by_stripped.keys()).to_numpy()
    if not hit.any():
        return None
    matched = sorted(set(unknown_ids[hit]))
    pairs = ", ".join(f"{u!r} vs {by_stripped[u.lstrip('0') or '0']!r}" for u in matched[:3])
    return pairs, len(matched), int(hit.sum())
