"""Champion / challenger promotion and rollback on the MLflow model registry.

Serving loads only ``<name>@champion``. Training and tuning register new versions as
``challenger``. :func:`promote` scores challenger and champion with the SAME evaluation (the
capability's latest backtest, passed in as ``evaluate``) and moves ``champion`` only when the
challenger is better by ``margin`` in the metric's direction, or when forced. Two evaluations
that say they scored different series or windows (their ``scored_on`` entries differ, e.g. a
plain and a hierarchical demand model) are not compared: refused with both descriptions,
unless forced. Every decision
(promoted / refused / forced / first), both scores, the margin, the user and the UTC time are
written as tags ``promotion.*`` on the challenger's model version and appended to the
registered model's ``dealerml.promotion_log`` tag (the newest entries that fit in a tag); the
full evidence of every decision, ``unchanged`` ones included, is an MLflow run in experiment
``dealerml-promotion``: both versions, the decision, every figure each evaluation returned
(params ``challenger.* / champion.*`` for where it was measured, e.g. the cutoff; metrics for the
numbers) and ``promotion.json``; its id is the tag ``promotion.run_id`` and
``PromotionDecision.evidence_run_id``; its tag ``promotion.complete`` turns ``true`` only once the
decision is in the registry (``false``: that promote was killed before it took effect; run it
again). A promote or rollback killed while it moves the champion is finished (the alias had moved:
history, log entry ``completed_after_kill``, evidence complete) or undone (it had not: its version
tags removed, the evidence ``promotion.aborted``) by the next promote or rollback, which says so
(:mod:`training._registry_moves`). The champion history (tag
``dealerml.champion_history``) lets :func:`rollback` return the alias to the previous champion;
a rolled-back version loses the ``challenger`` alias and is tagged ``dealerml.rolled_back``, so
a later ``promote`` does not put it back unless forced. Promote and rollback read and move the
champion under the name's registry lock (``tracking.registry_lock``, also held by a first
registration); a promote whose champion moved while it scored (another promote, a rollback) changes
nothing and says so. A tracking server offers no such lock: there the alias and the history are read
again after the move, and a move another process made in between is refused as lost (detected, not
prevented: the alias may stay on the other version). All MLflow calls go through :mod:`training.tracking`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training import tracking
from training._registry_moves import recorded_move, settle_killed_move
from training.errors import ConfigError

__all__ = ["promote", "rollback", "PromotionDecision", "metric_direction", "LOWER_IS_BETTER"]

LOWER_IS_BETTER = frozenset(
    {"mase", "rmsse", "pinball", "scaled_pinball", "brier", "ece", "mae", "rmse", "mse", "logloss", "smape", "mape", "wape"}
)
_LOG_TAG = "dealerml.promotion_log"
_ROLLED_BACK_TAG = "dealerml.rolled_back"


def metric_direction(metric: str) -> str:
    """``minimize`` for error metrics (MASE, Brier, ECE, ...), ``maximize`` otherwise (AUC, lift, ...)."""
    return "minimize" if metric.lower() in LOWER_IS_BETTER else "maximize"


@dataclass(frozen=True)
class PromotionDecision:
    name: str
    decision: str  # promoted | refused | forced | first | unchanged
    metric: str
    direction: str
    margin: float
    challenger_version: str
    champion_version: str | None
    challenger_score: float | None
    champion_score: float | None
    champion_after: str
    user: str
    time: str
    challenger_metrics: dict | None = None
    champion_metrics: dict | None = None
    evidence_run_id: str | None = None
    environment_notes: tuple[str, ...] = ()
    """A sentence per compared model trained with other package versions than this environment runs
    (``training.model_env``): both are scored here, so such a model may score otherwise than it did."""

    @property
    def promoted(self) -> bool:
        return self.decision in ("promoted", "forced", "first")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def message(self) -> str:
        if self.decision == "unchanged":  # nothing was scored: "auc=n/a" for both said nothing
            short = self.name.removeprefix("dealerml-")
            how = f"dealerml train {short}" + ("" if short == "dealers" else f" or dealerml tune {short}")
            return (f"{self.name}: unchanged — the challenger v{self.challenger_version} already is the champion, so "
                    f"there is nothing to compare; make a new challenger ({how}), then promote it")
        cs = "n/a" if self.challenger_score is None else f"{self.challenger_score:.6g}"
        ps = "n/a" if self.champion_score is None else f"{self.champion_score:.6g}"
        head = (f"{self.name}: {self.decision} — challenger v{self.challenger_version} {self.metric}={cs}, "
                f"champion v{self.champion_version or '-'} {self.metric}={ps}, margin {self.margin:g} ({self.direction})")
        if self.decision == "refused" and self.challenger_score is not None and self.champion_score is not None:
            # "champion is now v1" read as if something had moved; say by how much it fell short and what is left
            gain = self.challenger_score - self.champion_score
            gain = (gain if self.direction == "maximize" else -gain) + 0.0  # no "-0"
            short = (f"it is no better ({gain:+.6g})" if gain <= 0 else
                     f"it gains {gain:+.6g}, less than the margin {self.margin:g}")
            return (f"{head}; {short}, so the champion stays v{self.champion_after} (--force promotes it anyway, "
                    "recorded as forced)")
        return f"{head}; champion is now v{self.champion_after}"


def _score(evaluate: Callable[[Any], Any], estimator: Any, metric: str, which: str) -> tuple[float, dict]:
    """(the metric, everything the evaluation returned) for one model."""
    try:
        out = evaluate(estimator)
    except ConfigError as exc:  # 'the model's horizon_days (60) differs ...': say which model
        raise ConfigError(f"{which}: {exc}") from None
    full = dict(out) if isinstance(out, Mapping) else {metric: out}
    if isinstance(out, Mapping):
        if metric not in out:
            raise ConfigError(f"evaluation of the {which} returned no {metric!r}; it has {sorted(out)}")
        out = out[metric]
    v = float(out)
    if not math.isfinite(v):
        raise ConfigError(f"evaluation of the {which} gave a non-finite {metric}: {v}")
    return v, full


def _same_footing(name: str, ch_version: str, ch_full: dict | None, champ_version: str | None,
                  champ_full: dict | None) -> None:
    """Refuse to compare two evaluations that say they scored different series or windows
    (``scored_on``, e.g. a plain and a hierarchical demand model whose bottom series differ)."""
    a, b = (ch_full or {}).get("scored_on"), (champ_full or {}).get("scored_on")
    if a is not None and b is not None and a != b:
        raise ConfigError(f"{name}: challenger v{ch_version} and champion v{champ_version} were not scored on the same "
                          f"footing (challenger: {a}; champion: {b}), so their scores cannot be compared; retrain "
                          "the challenger on the champion's series (the same config), or promote it with --force")


def _record(result: PromotionDecision, data: Mapping[str, Any] | None = None) -> Any:
    """The decision and both evaluations as a run of experiment ``dealerml-promotion`` (returned), with
    ``data`` (the fingerprint of the book both were scored on) logged as a training run logs its own:
    tags ``data.<key>`` (``data.order_lines_sha256``, ``data.accounts_sha256`` ...) and ``data/fingerprint.json``.

    Its tag ``promotion.complete`` is ``false`` until :func:`promote` has written the decision to
    the registry (version tags, alias, log) and set it ``true``: a run left ``false`` belongs to a
    promote that was killed in between, whose decision did not (fully) take effect."""
    with tracking.training_run("promotion", run_name=f"{result.name}-v{result.challenger_version}-{result.decision}",
                               tags={"promotion.decision": result.decision, "promotion.model": result.name,
                                     "promotion.complete": "false"}, fingerprint=data) as run:
        run.log_params({"model": result.name, "metric": result.metric, "direction": result.direction,
                        "margin": result.margin, "challenger_version": result.challenger_version,
                        "champion_version": result.champion_version or "", "champion_after": result.champion_after,
                        "decision": result.decision})
        for side, vals in (("challenger", result.challenger_metrics), ("champion", result.champion_metrics)):
            for k, v in (vals or {}).items():
                if k == "baselines" and isinstance(v, dict):  # the same labels for both: once, as metrics
                    if side == "challenger":
                        run.log_metrics({"baseline": v})  # baseline.bgnbd.auc ...
                    continue
                if isinstance(v, bool) or not isinstance(v, int | float):
                    run.log_params({f"{side}.{k}": json.dumps(v, default=str)[:500]})
            run.log_metrics({f"{side}.{k}": v for k, v in (vals or {}).items()
                             if isinstance(v, int | float) and not isinstance(v, bool)})
        run.log_dict(result.to_dict(), "promotion.json")
    return run


_LOG_ATTEMPTS = 5  # writes of the promotion log before an entry lost to other processes is given up


def read_log(name: str) -> list:
    """The registered model's promotion log (tag ``dealerml.promotion_log``), oldest entry first."""
    raw = tracking.get_model_tags(name).get(_LOG_TAG)
    return json.loads(raw) if raw else []


def _append_log(name: str, entry: dict[str, Any], *, locked: bool = True) -> None:
    """Append ``entry`` to the registered model's ``dealerml.promotion_log`` tag (a read-modify-write of one
    JSON list; the newest entries that fit in a tag). ``locked``: the caller holds the name's registry lock
    (promote, rollback), so no other process writes the log in between. Without one (a tracking server) the
    log is read again after the write and the entry appended again while another process's write dropped it
    (two promotes each read the log, the last write kept only its own entry), up to :data:`_LOG_ATTEMPTS`
    writes, then a ConfigError (the decision itself took effect and is in its version's tags)."""
    key = json.dumps(entry, sort_keys=True, default=str)
    for _ in range(1 if locked else _LOG_ATTEMPTS):
        log = read_log(name)
        log.append(entry)
        # MLflow tag values are limited to 5000 characters: keep the newest entries that fit.
        while log and len(json.dumps(log)) > 4900:
            log.pop(0)
        tracking.set_model_tag(name, _LOG_TAG, json.dumps(log))
        if locked or not log:  # under the lock; or an entry too long for the tag, never kept
            return
        if any(json.dumps(e, sort_keys=True, default=str) == key for e in read_log(name)):
            return
    raise ConfigError(f"the promotion log of {name} (tag {_LOG_TAG}) lost this {entry.get('decision')} entry to "
                      f"other processes writing it {_LOG_ATTEMPTS} times; no registry lock is held on "
                      f"{tracking.shown_tracking_uri()} (a tracking server offers none). The decision took effect; "
                      f"the entry was {key[:1000]}")



def challenger_version(name: str, first: str = "train or tune first") -> str:
    """The version ``challenger`` points at; ConfigError when there is none, saying why when the last
    one was rolled back (``first``: what to do instead).

    A version whose registration never completed (its process killed after moving the alias, tag
    ``dealerml.registration`` = pending) is dropped first, as the next training run would drop it:
    promote scored it, then its evidence run's clean-up deleted it and writing the decision ended in
    MLflow's 'Model Version (name=dealerml-churn, version=3) not found' traceback."""
    dropped = [v for n, v in tracking.drop_incomplete_versions(tracking._configure()) if n == name]
    version = tracking.get_alias_version(name, "challenger")
    if dropped and version is not None:  # say what the alias is back on, not only when none is left
        logging.getLogger(__name__).warning(
            f"{name}: dropped v{', v'.join(dropped)}, whose registration was killed (a dealerml train / tune ended "
            f"while registering it); 'challenger' is back on v{version}, the last good version that held it")
    if version is None:
        crashed = (f" (v{', v'.join(dropped)} of a training run killed while registering it was dropped: its "
                   "registration never completed)") if dropped else ""
        raise ConfigError(f"{name} has no 'challenger' version in {tracking.shown_tracking_uri()}"
                          f"{crashed}{_after_rollback(name)}; {first}")
    return version


def _after_rollback(name: str) -> str:
    """Why there is no challenger when the last one was rolled back (rollback removes its
    challenger alias, so a later promote cannot bring it back); empty otherwise."""
    from mlflow.exceptions import MlflowException

    try:
        versions = tracking._configure().search_model_versions(f"name='{name}'")
    except MlflowException:
        return ""
    rolled = [mv for mv in versions if (mv.tags or {}).get(_ROLLED_BACK_TAG)]
    if not rolled:
        return ""
    last = max(rolled, key=lambda mv: int(mv.version))
    return (f" (v{last.version}, the last challenger promoted, was rolled back from champion "
            f"({last.tags[_ROLLED_BACK_TAG]}) and lost its 'challenger' alias so that a promote does not bring it back)")

def promote(
    name: str,
    *,
    metric: str,
    evaluate: Callable[[Any], Any],
    margin: float = 0.0,
    force: bool = False,
    direction: str | None = None,
    user: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> PromotionDecision:
    """Move ``champion`` of ``name`` to the ``challenger`` if it scores better by ``margin``.

    ``evaluate(estimator)`` returns a float or a dict holding ``metric``; it is called on the
    challenger and on the champion, so both face the same backtest. ``direction`` defaults to
    :func:`metric_direction`. Without a champion the challenger becomes champion (``first``).
    ``data``: the fingerprint of the book ``evaluate`` scores on (``OrderBook.fingerprint``), recorded on
    the evidence run (its sha256 of each table, as a training run's).
    """
    if margin < 0:
        raise ConfigError(f"--margin must be >= 0; got {margin}")
    direction = direction or metric_direction(metric)
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"direction must be maximize or minimize; got {direction!r}")
    with tracking.registry_lock(name) as locked:  # a promote / rollback killed half-way: finished or undone first
        settle_killed_move(name, _append_log, locked=locked)
    ch_version = challenger_version(name)
    champ_version = tracking.get_alias_version(name, "champion")
    rolled_back = tracking.get_version_tags(name, ch_version).get(_ROLLED_BACK_TAG)
    if rolled_back and not force:
        raise ConfigError(f"{name} v{ch_version} was rolled back from champion ({rolled_back}); retrain, or "
                          "promote it with --force if it should come back")
    user = user or tracking._user()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    ch_score = champ_score = None
    ch_full = champ_full = None
    notes: list[str] = []
    if champ_version == ch_version:
        decision = "unchanged"
    else:
        with tempfile.TemporaryDirectory(prefix="dealerml-promote-") as tmp:
            from training.model_env import model_mismatch_note

            challenger, info = tracking.load_model(name, "challenger", dst_dir=Path(tmp) / "challenger")
            notes.append(model_mismatch_note(info))
            ch_score, ch_full = _score(evaluate, challenger, metric, f"challenger v{ch_version}")
            if champ_version is not None:
                try:  # a champion whose files are gone from the store cannot be scored either: --force replaces it
                    champion, info = tracking.load_model(name, "champion", dst_dir=Path(tmp) / "champion")
                    notes.append(model_mismatch_note(info))
                    champ_score, champ_full = _score(evaluate, champion, metric, f"champion v{champ_version}")
                except ConfigError as exc:
                    # a champion this config cannot score (trained on another churn.horizon_days) blocked every
                    # later challenger, --force too: the only way out was setting the alias in MLflow by hand
                    if not force:
                        raise ConfigError(f"{name}: {exc}, so challenger v{ch_version} cannot be compared with it; "
                                          "--force promotes the challenger without the comparison (recorded as "
                                          "forced)") from None
                    champ_full = {"not_scored": str(exc)}
        if not force:  # --force moves the alias anyway (recorded as forced, both evaluations kept)
            _same_footing(name, ch_version, ch_full, champ_version, champ_full)
        if champ_version is None:
            decision = "first"
        elif champ_score is None:  # --force past a champion this config cannot score
            decision = "forced"
        else:
            gain = ch_score - champ_score if direction == "maximize" else champ_score - ch_score
            if gain >= margin and gain > 0:
                decision = "promoted"
            else:
                decision = "forced" if force else "refused"
    after = ch_version if decision in ("promoted", "forced", "first") else (champ_version or ch_version)
    result = PromotionDecision(
        name=name, decision=decision, metric=metric, direction=direction, margin=float(margin),
        challenger_version=ch_version, champion_version=champ_version, challenger_score=ch_score,
        champion_score=champ_score, champion_after=after, user=user, time=now,
        challenger_metrics=ch_full, champion_metrics=champ_full,
        environment_notes=tuple(n for n in notes if n),
    )
    # the evidence is recorded before the alias moves: no undocumented champion
    evidence = _record(result, data)
    result = dataclasses.replace(result, evidence_run_id=evidence.run_id)
    if decision == "unchanged":
        evidence.set_tags({"promotion.complete": "true"})
        return result
    with tracking.registry_lock(name) as locked:  # the champion compared with is still the champion, until moved
        # no lock (a tracking server): the history read before the alias, to tell afterwards whether another
        # process moved the champion in between (it sets the alias before it appends to the history)
        before = None if locked else tracking.champion_history(name)
        _refuse_moved_champion(name, champ_version, ch_version, evidence)
        _write_decision(result, evidence, margin, before)
    return result


def _refuse_moved_champion(name: str, champ_version: str | None, ch_version: str, evidence: Any) -> None:
    """A ConfigError when the champion is no longer ``champ_version`` (another promote, a rollback or a
    first registration moved it while this one scored): moving the alias then overwrote that move unseen
    (a 'first' promote too, the champion a run had registered a moment before). The evidence run is
    tagged ``promotion.aborted`` and stays ``promotion.complete`` = false."""
    now = tracking.get_alias_version(name, "champion")
    if now == champ_version:
        return
    why = (f"the champion of {name} moved from {'v' + champ_version if champ_version else 'none'} to "
           f"{'v' + now if now else 'none'} while this promote scored challenger v{ch_version}")
    evidence.set_tags({"promotion.aborted": why})
    raise ConfigError(f"{why}; nothing was changed: run promote again to compare the challenger with the champion "
                      "now")


def _write_decision(result: PromotionDecision, evidence: Any, margin: float, before: list[str] | None = None) -> None:
    """The decision into the registry: the challenger's tags, the alias, the log; then the evidence complete.
    ``before``: the champion history read before the move when no registry lock is held; the alias and
    history are then checked after it (:func:`_refuse_lost_move`)."""
    name, ch_version, decision = result.name, result.challenger_version, result.decision
    ch_score, champ_score, champ_version = result.challenger_score, result.champion_score, result.champion_version
    metric, direction, user, now = result.metric, result.direction, result.user, result.time
    tags = {
        "promotion.run_id": result.evidence_run_id,
        "promotion.decision": decision,
        "promotion.metric": metric,
        "promotion.direction": direction,
        "promotion.margin": margin,
        "promotion.challenger_score": ch_score,
        "promotion.champion_score": "" if champ_score is None else champ_score,
        "promotion.champion_version": champ_version or "",
        "promotion.forced": str(decision == "forced").lower(),
        "promotion.user": user,
        "promotion.time": now,
    }
    entry = {k: v for k, v in result.to_dict().items() if k not in ("name", "challenger_metrics", "champion_metrics")}
    if not result.promoted:
        tracking.set_version_tags(name, ch_version, tags)
        _append_log(name, entry, locked=before is None)
        evidence.set_tags({"promotion.complete": "true"})
        return
    hist = before if before is not None else tracking.champion_history(name)
    after = hist if hist[-1:] == [ch_version] else [*hist, ch_version]
    # written first, so a promote killed in between is finished (or undone) by the next one (_registry_moves)
    with recorded_move(name, {"what": "promote", "from": champ_version, "to": ch_version, "history": after[-200:],
                              "entry": entry, "evidence_run_id": result.evidence_run_id,
                              "undo_version": ch_version, "undo_tags": _before(name, ch_version, tags)}):
        tracking.set_version_tags(name, ch_version, tags)
        tracking.set_alias(name, "champion", ch_version)
        if before is not None:
            _refuse_lost_move(name, ch_version, after, "promote", evidence)
        _append_log(name, entry, locked=before is None)
        evidence.set_tags({"promotion.complete": "true"})  # the decision is in the registry


def _before(name: str, version: str, tags: Mapping[str, str]) -> dict[str, str | None]:
    """The values ``tags``' keys have on ``version`` before a move sets them (None: not set), for the undo of a
    move killed before it moved the champion: deleting them erased an earlier decision's (a version rolled back
    once, promoted again with --force and then rolled back by a process killed before the alias moved lost its
    first rollback's tags, dealerml.rolled_back with them)."""
    old = tracking.get_version_tags(name, version)
    return {k: old.get(k) for k in sorted(tags)}


def _refuse_lost_move(name: str, to: str, expected: list[str], what: str, evidence: Any = None) -> None:
    """Without a registry lock (a tracking server), after this process moved ``champion`` to ``to``:
    a ConfigError when the alias or the history is not what the move left (``expected``), because
    another process moved them in between and one of the two moves was lost (two promotes each
    said promoted and the history kept one). A lost update is detected, not prevented, and not in
    every interleaving: a move whose check ran before the other's writes reports success; the
    evidence run gets ``promotion.aborted``."""
    now, hist = tracking.get_alias_version(name, "champion"), tracking.champion_history(name)
    if now == to and hist == expected[-200:]:
        return
    why = (f"the champion of {name} was moved by another process while this {what} moved it to v{to}: it is "
           f"{'v' + now if now else 'unset'} now, champion history {hist} (this {what} left {expected[-200:]}); "
           f"no registry lock is held on {tracking.shown_tracking_uri()} (a tracking server offers none)")
    if evidence is not None:
        evidence.set_tags({"promotion.aborted": why})
    raise ConfigError(f"{why}: check which version should be champion before running promote or rollback again")


def rollback(name: str, *, user: str | None = None) -> tuple[str, str]:
    """Point ``champion`` back at the previous champion; returns ``(from_version, to_version)``. Read and
    moved under the registry lock, so a promote or a first registration in between is not undone unseen
    (without a lock, on a tracking server, such a move is detected afterwards: :func:`_refuse_lost_move`)."""
    with tracking.registry_lock(name) as locked:
        return _rollback(name, user=user, locked=locked)


def _rollback(name: str, *, user: str | None, locked: bool = True) -> tuple[str, str]:
    settle_killed_move(name, _append_log, locked=locked)  # a promote / rollback killed half-way: finished or undone first
    hist = tracking.champion_history(name)  # before the alias: another move sets the alias first
    seen = list(hist)
    current = tracking.get_alias_version(name, "champion")
    if current is None:
        raise ConfigError(f"{name} has no champion in {tracking.shown_tracking_uri()}; nothing to roll back")
    deleted: list[str] = []
    # a previous champion deleted from the registry since (by hand, in the MLflow UI) is passed over: moving
    # the alias to it failed in a traceback after the current champion had been tagged rolled back
    held = {str(mv.version) for mv in tracking._configure().search_model_versions(f"name='{name}'")}
    while hist and (hist[-1] == current or hist[-1] not in held):
        v = hist.pop()
        if v != current and v not in deleted:
            deleted.append(v)
    gone = (f" (the earlier champion(s) {', '.join('v' + v for v in deleted)} were deleted from the registry)"
            if deleted else "")
    if not hist:
        raise ConfigError(f"{name}: champion v{current} has no previous champion to roll back to{gone}; nothing "
                          "was changed")
    previous = hist[-1]
    from training._tracking_models import _refuse_moved_artifacts

    try:  # a champion whose files are gone would be served by no one: the service fails to load it at its restart
        _refuse_moved_artifacts(tracking._configure(), name, previous)
    except ConfigError as exc:
        raise ConfigError(f"{name}: cannot roll back from v{current} to v{previous}: {exc}; nothing was changed") from None
    user = user or tracking._user()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = {"rollback.user": user, "rollback.time": now, "rollback.to": previous, _ROLLED_BACK_TAG: f"{now} by {user}",
            **({"rollback.passed_over_deleted": ",".join(deleted)} if deleted else {})}
    entry = {"decision": "rollback", "from": current, "to": previous, "user": user, "time": now,
             **({"passed_over_deleted": deleted} if deleted else {})}
    # written first, so a rollback killed in between is finished (or undone) by the next promote / rollback
    with recorded_move(name, {"what": "rollback", "from": current, "to": previous, "history": hist, "entry": entry,
                              "drop_challenger": True, "undo_version": current,
                              "undo_tags": _before(name, current, tags)}):
        tracking.set_version_tags(name, current, tags)
        tracking.set_alias(name, "champion", previous)
        if not locked:  # before the history is overwritten, which would hide a move made since it was read
            _refuse_lost_move(name, previous, seen if seen[-1:] == [previous] else [*seen, previous], "rollback")
        if tracking.get_alias_version(name, "challenger") == current:  # a later promote must not bring it back
            tracking.delete_alias(name, "challenger")
        # The rolled-back version leaves the history, so a second rollback goes one step further.
        tracking.set_champion_history(name, hist)
        if not locked:
            _refuse_lost_move(name, previous, hist, "rollback")
        _append_log(name, entry, locked=locked)
    return current, previous
