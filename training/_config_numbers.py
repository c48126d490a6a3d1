"""Settings whose numbers refuse YAML's booleans: ``horizon: yes`` (or ``true``, ``on``) is read by YAML
as ``True``, and pydantic took it as the number 1, so a demand horizon of one period was fitted
without a word. The settings sections inherit :class:`NoBoolNumbers`. Likewise YAML reads an unquoted
``cutoff: 2024-10-01`` as a date, which a text key (``demand.cutoff``, ``dealers.cutoff``) refused as
"Input should be a valid string; got datetime.date(2024, 10, 1)": a text key takes it as the date
written, ``2024-10-01``."""

from __future__ import annotations

import datetime as dt
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationInfo, field_validator

__all__ = ["NoBoolNumbers"]


def _numeric(annotation: Any) -> bool:
    """True for ``int`` / ``float`` and their optionals (``int | None``); not for ``bool`` or text."""
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(a in (int, float) for a in args)
    return False


def _text(annotation: Any) -> bool:
    """True for ``str`` and ``str | None``."""
    if annotation is str:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args == [str]
    return False


class NoBoolNumbers(BaseModel):
    """A base for settings sections: a boolean given for a number (int or float) key is refused; a
    YAML date given for a text key is the text written (YYYY-MM-DD)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, bool) and info.field_name and _numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number, not true / false (YAML reads yes, no, on and off as true / false)")
        if isinstance(v, dt.date) and info.field_name and _text(cls.model_fields[info.field_name].annotation):
            if isinstance(v, dt.datetime):
                return v.date().isoformat() if v == dt.datetime(v.year, v.month, v.day) else v.isoformat(sep=" ")
            return v.isoformat()
        return v
