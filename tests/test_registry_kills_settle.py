"""More of the registry kill recovery (training/_registry_moves.py), killed for real as in
tests/test_registry_kills.py:

* a promote killed after moving 'champion' on another machine sharing a locked store (PostgreSQL: the
  registry lock is an advisory lock in the store's database, held by every machine) was never settled:
  the pid check read 'another machine's, cannot be seen', so the next promote said 'unchanged' with no
  log entry, as before the fix, and the next move's own record overwrote it for good. Under the registry
  lock a recorded move is dead wherever it ran: a live one holds that lock.
* a promote killed after its log entry (before its evidence said complete) was logged twice: the next
  promote appended the entry again, marked completed_after_kill.
"""

from __future__ import annotations

import json
import logging
import signal

from _support_kill import _wait_for
from _support_registry_kills import NAME, moving, register_tiny, start
from _support_tuning import TinyTarget, _client

_TAG = "dealerml.move_in_progress"




def _kill(proc) -> None:
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def _log(client) -> list[dict]:
    return json.loads(client.get_registered_model(NAME).tags.get("dealerml.promotion_log") or "[]")


_PROMOTE = "promote('dealerml-churn', metric='auc', evaluate=TinyTarget().evaluate, force=True)"


def test_a_move_killed_on_another_machine_of_a_locked_store_is_settled(home, tmp_path, caplog):
    from training import registry

    assert (register_tiny(), register_tiny()) == ("1", "2")
    client = _client(home)
    proc = moving(home, tmp_path / "promoted", _PROMOTE)
    _wait_for(tmp_path / "promoted", proc, "the champion's move")
    _kill(proc)
    move = json.loads(client.get_registered_model(NAME).tags[_TAG])
    move["dealerml.host"] = "machine-a"  # what machine B sees of machine A's killed promote
    client.set_registered_model_tag(NAME, _TAG, json.dumps(move))
    assert client.get_registered_model(NAME).aliases == {"champion": 2, "challenger": 2} and _log(client) == []

    with caplog.at_level(logging.WARNING, logger="training.registry"):
        assert registry.promote(NAME, metric="auc", evaluate=TinyTarget().evaluate).decision == "unchanged"
    assert f"(process {proc.pid} on machine-a) was killed after it moved 'champion'" in caplog.text
    log = _log(client)
    assert [(e["decision"], e["champion_after"]) for e in log] == [("forced", "2")] and log[0]["completed_after_kill"]
    model = client.get_registered_model(NAME)
    assert _TAG not in model.tags and json.loads(model.tags["dealerml.champion_history"]) == ["1", "2"]
    run_id = client.get_model_version(NAME, "2").tags["promotion.run_id"]
    assert client.get_run(run_id).data.tags["promotion.complete"] == "true"


def test_a_promote_killed_after_its_log_entry_is_not_logged_twice(home, tmp_path, caplog):
    from training import registry

    assert (register_tiny(), register_tiny()) == ("1", "2")
    client = _client(home)
    proc = start(home, f"""
        import time
        from pathlib import Path
        from _support_tuning import TinyTarget
        from training import registry
        append = registry._append_log
        def paused(name, entry, **kw):
            append(name, entry, **kw)
            Path({str(tmp_path / "logged")!r}).write_text("x")
            time.sleep(120)
        registry._append_log = paused
        registry.{_PROMOTE}
    """)
    _wait_for(tmp_path / "logged", proc, "the promote's log entry")
    _kill(proc)
    assert [e["decision"] for e in _log(client)] == ["forced"] and _TAG in client.get_registered_model(NAME).tags

    with caplog.at_level(logging.WARNING, logger="training.registry"):
        assert registry.promote(NAME, metric="auc", evaluate=TinyTarget().evaluate).decision == "unchanged"
    assert "was killed after it moved 'champion'" in caplog.text
    log = _log(client)
    assert [e["decision"] for e in log] == ["forced"] and "completed_after_kill" not in log[0]  # logged once
    model = client.get_registered_model(NAME)
    assert _TAG not in model.tags and json.loads(model.tags["dealerml.champion_history"]) == ["1", "2"]
    run_id = client.get_model_version(NAME, "2").tags["promotion.run_id"]
    assert client.get_run(run_id).data.tags["promotion.complete"] == "true"


def test_english_dates_with_dirt_holding_a_foreign_month_word_are_not_refused():
    """'3 days ago' among '01-Dec-2010 08:26' dates stopped the run ('ago' is a Spanish / Italian month) where it
    was dropped as unparseable_date; a French 'août' beside 'sept.' is still refused (fb8823a, e3d2816)."""
    import pandas as pd
    import pytest

    from training._validate_dates import _parse_dates
    from training.errors import DataError

    good = ["01-Dec-2010 08:26", "03-Jan-2011 10:00"] * 200
    for dirt in ("3 days ago", "gen 2 reorder"):
        out = _parse_dates(pd.Series([*good, dirt]), col="order_date", table="order_lines", source="x.csv",
                           mapping={}, date_format=None, dayfirst=None)
        assert out.isna().sum() == 1 and pd.isna(out.iloc[-1]) and out.iloc[0] == pd.Timestamp("2010-12-01 08:26")
    with pytest.raises(DataError, match="the words août are no English month names"):
        _parse_dates(pd.Series(["01 sept. 2011", "03 oct. 2011"] * 100 + ["22 août 2011"]), col="order_date",
                     table="order_lines", source="x.csv", mapping={}, date_format=None, dayfirst=None)


def test_a_rollback_killed_before_moving_the_champion_keeps_an_earlier_rollbacks_tags(home, tmp_path):
    """v2 rolled back, promoted again with --force, then rolled back by a process killed before the alias moved:
    the undo deleted v2's rollback tags, the first rollback's dealerml.rolled_back with them; they are put back."""
    from training import registry, tracking
    from training._registry_moves import settle_killed_move

    assert (register_tiny(), register_tiny()) == ("1", "2")
    evaluate = TinyTarget().evaluate
    registry.promote(NAME, metric="auc", evaluate=evaluate, force=True)
    registry.rollback(NAME)
    tracking.set_alias(NAME, "challenger", "2")
    registry.promote(NAME, metric="auc", evaluate=evaluate, force=True)
    client = _client(home)
    first = {k: v for k, v in client.get_model_version(NAME, "2").tags.items() if k.startswith("rollback.")
             or k == "dealerml.rolled_back"}
    assert set(first) == {"rollback.user", "rollback.time", "rollback.to", "dealerml.rolled_back"}
    proc = moving(home, tmp_path / "paused", "rollback('dealerml-churn')", before=True)
    _wait_for(tmp_path / "paused", proc, "the champion's move back")
    _kill(proc)
    with tracking.registry_lock(NAME) as locked:
        said = settle_killed_move(NAME, registry._append_log, locked=locked)
    assert said and "was killed before it moved 'champion', which stays v2" in said
    tags = client.get_model_version(NAME, "2").tags
    assert {k: tags.get(k) for k in first} == first  # was: {} (all four deleted)
    assert client.get_registered_model(NAME).aliases["champion"] == 2
