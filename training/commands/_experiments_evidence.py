"""What ``dealerml promote`` and ``dealerml rollback`` say beside their decision: the baselines and where
they were measured (``_baselines_said``, ``_where``, ``_compared``), the selection-bias caution for a tuned
challenger (``_selected_on``), the caution or refusal for a challenger fitted on other data
(``_fitted_on_other_data``, ``_OtherData``) and the note that a running service keeps its champion
(``_restart_note``).

Split from :mod:`training.commands.experiments` to keep each module under ~500 lines; pure moves. Used by
its ``promote_cmd`` and ``rollback_cmd``; it re-exports every name (tests import ``_fitted_on_other_data``,
``_selected_on``, ``_baselines_said`` from there). Imports nothing of the commands (no cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _baselines_said(evaluations: list[dict[str, Any]], metric: str) -> str:
    """'baselines on the same labels: bgnbd auc=0.7366, recency auc=0.6501' when the evaluator scores them
    (churn): a challenger that beats the champion but not BG/NBD is no model worth serving."""
    base = (evaluations[0].get("baselines") if evaluations else None) or {}
    said = [f"{name} {metric}={vals[metric]:.6g}" for name, vals in base.items()
            if isinstance(vals, dict) and isinstance(vals.get(metric), int | float)]
    return f"baselines on the same labels: {', '.join(said)}" if said else ""


def _where(evaluations: list[dict[str, Any]]) -> str:
    """Where the evaluator measured, from its non-numeric entries (e.g. the test cutoff)."""
    if not evaluations:
        return ""
    first = evaluations[0]
    parts = []
    if "cutoff" in first:
        parts.append(f"the backtest at cutoff {first['cutoff']}")
    if "label_window" in first:
        parts.append(f"labels {first['label_window']}")
    if "windows" in first and isinstance(first["windows"], list):
        parts.append(f"{len(first['windows'])} window(s) cut at {', '.join(map(str, first['windows']))}")
    if "refit" in first:
        parts.append(str(first["refit"]))
    return "; ".join(parts)


_EXAMPLE_MARGIN = {"churn": 0.005, "demand": 0.01, "dealers": 0.01}  # experiments/online_retail.yaml's


def _selected_on(tuned: dict[str, Any], evaluations: list[dict[str, Any]], margin: float = 0.0) -> str:
    """A warning when the challenger was tuned on a fold that ends at the cutoff promote scored it on:
    it was picked on those labels, so the comparison favours it (selection bias)."""
    cut = str(evaluations[0].get("cutoff") or "") if evaluations else ""
    folds = [str(f) for f in tuned.get("folds") or []]
    hit = [f for f in folds if cut and cut in f]
    if not hit:
        return ""
    return (f"the challenger was tuned (study {tuned.get('study')}) on a fold with this cutoff ({hit[-1]}), so it was "
            f"picked on the labels it is scored on here and its {cut} figure is optimistic; "
            + (f"the margin ({margin:g}) is the guard. " if margin > 0 else
               "with a margin of 0 nothing guards against that: set one. ")
            + "When the data allow, check it on a later cutoff")


class _OtherData(str):
    """The caution (a str) when the challenger was fitted on other order lines, with :meth:`refusal`, the
    reason promote gives without --force (both name the two books)."""

    books: str = ""
    cap: str = ""
    config: Path | None = None

    def refusal(self) -> str:
        books = self.books.replace("the ones this promote scored on", "the ones this promote scores on", 1)
        return (f"{books}. Its evidence is not comparable: its run backtested it on the former, and promote would "
                f"score its settings refitted on the latter, not the version the service would load as champion; so "
                f"nothing was scored or moved. Retrain it on this config (dealerml train {self.cap} --config "
                f"{self.config}) and promote that one, or pass --force to score its settings on this book and promote "
                "it anyway (recorded as forced when it does not win)")


def _fitted_on_other_data(cap: str, config: Path, info: Any, book: Any) -> str:
    """A caution when the challenger's training run read other data than ``config``'s book: other order
    lines (its ``data.order_lines_sha256``) or, for churn and dealers, other accounts or service events
    (``data.accounts_sha256``, ``data.service_events_sha256``; a run from before those were logged is not
    called different). Promote refits both models' settings on this book, so the scores compare settings,
    but the version that becomes champion is the one fitted on the other data (a churn or demand model
    trained with another book's config was promoted on this one's scores without a word). Without
    --force, promote refuses such a challenger with :meth:`_OtherData.refusal`."""
    fp = getattr(book, "fingerprint", None) or {}
    from training import tracking
    from training.lineage import NOT_GIVEN, other_tables, sha_key, table_label

    ours = fp.get("order_lines_sha256")
    tags = tracking.tags_if_other_lines(info, ours)
    others: list[str] = []
    if info is not None and getattr(info, "run_id", None) and book is not None:
        theirs_tags = tags if tags is not None else tracking.run_tags(info.run_id)
        ours_tags = {f"data.{k}": v for k, v in fp.items() if isinstance(v, str)}
        differ, unknown = other_tables(cap, [theirs_tags, ours_tags])
        others = [t for t, _ in differ]
        if unknown:  # a run from before these were logged: not "other data", but not confirmed either
            typer.echo(f"note: challenger v{info.version}'s run logged no sha256 of its "
                       f"{' or '.join(table_label(t) for t, _ in unknown)} (it is from before they were logged), so "
                       f"promote cannot tell whether it was fitted on the ones {config} reads", err=True)
        if others and tags is None:
            tags = theirs_tags
    if tags is None:
        return ""
    def said(source: Any, rows: Any, first: Any, last: Any, sha: str) -> str:
        day = lambda v: str(v).split(" ")[0]  # noqa: E731
        parts = [f"{rows} order lines" if rows else "", f"{day(first)} .. {day(last)}" if first and last else "",
                 f"sha256 {sha[:12]}"]
        return f"{source or 'its data'} ({', '.join(p for p in parts if p)})"

    def said_table(table: str, source: Any, rows: Any, sha: Any) -> str:
        if not sha or sha == NOT_GIVEN:
            return f"no {table_label(table)}"
        return f"{table_label(table)} {source or '?'} ({f'{rows} rows, ' if rows else ''}sha256 {str(sha)[:12]})"

    lines_differ = bool(ours) and tags.get("data.order_lines_sha256") not in (None, "", ours)
    what = [*(["order lines"] if lines_differ else []), *(table_label(t) for t in others)]
    theirs_said, ours_said = [], []
    if lines_differ:
        table = (fp.get("tables") or {}).get("order_lines") or {}
        # train demand logs its config (data.source), not the tables
        theirs_said.append(said(tags.get("data.tables.order_lines.source") or tags.get("data.source"),
                                tags.get("data.tables.order_lines.rows_out"), tags.get("data.order_date_min"),
                                tags.get("data.order_date_max"), tags["data.order_lines_sha256"]))
        ours_said.append(said(table.get("source"), table.get("rows_out"), fp.get("order_date_min"),
                              fp.get("order_date_max"), ours))
    for t in others:
        table = (fp.get("tables") or {}).get(t) or {}
        theirs_said.append(said_table(t, tags.get(f"data.tables.{t}.source"), tags.get(f"data.tables.{t}.rows_out"),
                                      tags.get(f"data.{sha_key(t)}")))
        ours_said.append(said_table(t, table.get("source"), table.get("rows_out"), fp.get(sha_key(t))))
    books = (f"challenger v{info.version} was fitted on other {' and '.join(what)} than the ones this promote scored "
             f"on: its run read {'; '.join(theirs_said)}, {config} reads {'; '.join(ours_said)}")
    out = _OtherData(books + ". Both models' settings were refitted on the latter, so the scores compare settings, but "
                     "the version the service would load as champion is the one fitted on the former; retrain it on "
                     f"this config (dealerml train {cap} --config {config}) and promote that one")
    out.books, out.cap, out.config = books, cap, config
    return out


def _compared(evaluations: list[dict[str, Any]]) -> str:
    """What both models were scored on (the evaluator's ``scored_on``: series, window cutoff, periods);
    the registry refuses a promotion whose two ``scored_on`` differ, so the challenger's stands for both."""
    return str(evaluations[0].get("scored_on") or "") if evaluations else ""


def _restart_note(name: str, old: Any, new: Any) -> str:
    """A running service loaded its champions at start-up: say so where the champion moves.

    It said the service 'keeps serving v{old}' (the version moved away from), but a service serves what it
    loaded at start-up, whatever that was: one started on v1 before a promote to v2 still served v1 after
    the rollback to v1, and was not stale. What it does (``serving.loader.check_champions``,
    ``ModelSlot.stale``): it re-reads the champion every $DEALERML_SERVE_CHAMPION_CHECK_SECONDS and marks the
    model stale in /model_info (and logs it) while it serves another version than the champion."""
    churn = (" (a dealer ranking whose churn risk came from another churn version is marked alike)"
             if name == "dealerml-churn" else "")
    return (f"a running dealerml service keeps serving the {name} version it loaded at start-up until it is "
            f"restarted (models are read once), then serves v{new}; it re-reads the champion every "
            f"$DEALERML_SERVE_CHAMPION_CHECK_SECONDS (default 60 s; 0: never) and, while it serves another version "
            f"than v{new} (such as v{old}), /model_info shows it as stale and the log says so{churn}; one started "
            f"on v{new} serves it and is not stale")
