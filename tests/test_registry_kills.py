"""Registry writers killed for real at the moment between two of their writes (the style of
tests/test_crash_consistency.py):

* `train --json OUT` killed after registering, while putting OUT in place: SIGTERM left ``.OUT.tmp`` beside OUT
  (it now unwinds like `write_files`); after a SIGKILL the next write of OUT replaces it.
* `promote` killed after moving 'champion' and before its log entry: champion = the new version, no log entry,
  its evidence run saying it never took effect; the next promote now completes the record and says so. A killed
  `rollback` left its history ending on the version it had left, and the next rollback went back to the
  rolled-back version; the next rollback now finishes the first (and has nowhere further to go).
* two registrations killed one after the other (the second started before the first was killed) while a third
  run's clean-up ran between them: the second had recorded the first's dead version as the one to give
  'challenger' back to; once the clean-up deleted that one, the challenger waiting for `promote` had none.
"""

from __future__ import annotations

import json
import logging
import signal

import pytest
from _support_kill import _wait_for
from _support_registry_kills import NAME, cleaning, moving, register_tiny, registering, train_json
from _support_tuning import TinyTarget, _client


def _kill(proc, sig=signal.SIGKILL) -> None:
    try:
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_train_json_killed_while_putting_its_report_in_place_leaves_no_temp_file(home, tmp_path, sig):
    out = tmp_path / "out" / "bt.json"
    out.parent.mkdir()
    out.write_text('{"old": true}')
    proc = train_json(home, out, tmp_path / "paused")
    _wait_for(tmp_path / "paused", proc, "the report's rename")
    assert sorted(p.name for p in out.parent.iterdir()) == [".bt.json.tmp", "bt.json"]
    _kill(proc, sig)
    assert proc.returncode == -sig
    assert _client(home).get_model_version(NAME, "1").tags["dealerml.registration"] == "complete"  # registered
    assert json.loads(out.read_text()) == {"old": True}
    left = sorted(p.name for p in out.parent.iterdir())
    if sig == signal.SIGTERM:  # unwound: the half file removed, no traceback
        assert left == ["bt.json"] and "Traceback" not in proc.stderr.read()
        return
    assert left == [".bt.json.tmp", "bt.json"]  # nothing runs on SIGKILL: the next write of OUT replaces it
    from training.commands._common import commit_files, json_writer, stage_files

    commit_files(stage_files([(out, json_writer({"new": 1}))]))
    assert sorted(p.name for p in out.parent.iterdir()) == ["bt.json"] and json.loads(out.read_text()) == {"new": 1}


def _log(client) -> list[dict]:
    return json.loads(client.get_registered_model(NAME).tags.get("dealerml.promotion_log") or "[]")


def test_a_promote_or_rollback_killed_after_moving_the_champion_is_finished_by_the_next(home, tmp_path, caplog):
    from training import registry
    from training.errors import ConfigError

    assert (register_tiny(), register_tiny()) == ("1", "2")  # v1 champion, v2 challenger
    client = _client(home)
    proc = moving(home, tmp_path / "promoted", "promote('dealerml-churn', metric='auc', "
                                               "evaluate=TinyTarget().evaluate, force=True)")
    _wait_for(tmp_path / "promoted", proc, "the champion's move")
    _kill(proc)
    model = client.get_registered_model(NAME)
    assert model.aliases == {"champion": 2, "challenger": 2} and _log(client) == []  # moved, and no log entry
    run_id = client.get_model_version(NAME, "2").tags["promotion.run_id"]
    assert client.get_run(run_id).data.tags["promotion.complete"] == "false"  # "never took effect"

    with caplog.at_level(logging.WARNING, logger="training.registry"):
        decision = registry.promote(NAME, metric="auc", evaluate=TinyTarget().evaluate)
    assert decision.decision == "unchanged"
    said = f"the promote of {NAME} from v1 to v2 (process {proc.pid}) was killed after it moved 'champion'"
    assert said in caplog.text
    log = _log(client)
    assert [(e["decision"], e["champion_after"]) for e in log] == [("forced", "2")]
    assert log[0]["completed_after_kill"]
    tags = client.get_run(run_id).data.tags
    assert tags["promotion.complete"] == "true" and tags["promotion.completed_after_kill"].startswith(said)

    proc = moving(home, tmp_path / "rolled", "rollback('dealerml-churn')")
    _wait_for(tmp_path / "rolled", proc, "the champion's move back")
    _kill(proc)
    model = client.get_registered_model(NAME)
    assert model.aliases == {"champion": 1, "challenger": 2}
    assert json.loads(model.tags["dealerml.champion_history"]) == ["1", "2", "1"]  # v2 would be rolled back to
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training.registry"), \
            pytest.raises(ConfigError, match="champion v1 has no previous champion to roll back to"):
        registry.rollback(NAME)  # it went back to the rolled-back v2
    assert f"the rollback of {NAME} from v2 to v1 (process {proc.pid}) was killed after it moved" in caplog.text
    model = client.get_registered_model(NAME)
    assert model.aliases == {"champion": 1} and json.loads(model.tags["dealerml.champion_history"]) == ["1"]
    assert [e["decision"] for e in _log(client)] == ["forced", "rollback"]
    assert "dealerml.move_in_progress" not in model.tags


def test_a_promote_killed_before_moving_the_champion_is_undone_by_the_next(home, tmp_path, caplog):
    from training import registry
    from training.errors import ConfigError

    assert (register_tiny(), register_tiny()) == ("1", "2")
    client = _client(home)
    proc = moving(home, tmp_path / "tagged", "promote('dealerml-churn', metric='auc', evaluate=TinyTarget().evaluate, "
                                             "force=True)", before=True)
    _wait_for(tmp_path / "tagged", proc, "the champion's move")
    _kill(proc)
    assert client.get_registered_model(NAME).aliases == {"champion": 1, "challenger": 2}
    tags = client.get_model_version(NAME, "2").tags
    assert tags["promotion.decision"] == "forced"  # said, and never done
    run_id = tags["promotion.run_id"]
    with caplog.at_level(logging.WARNING, logger="training.registry"), \
            pytest.raises(ConfigError, match="champion v1 has no previous champion"):
        registry.rollback(NAME)
    said = (f"the promote of {NAME} from v1 to v2 (process {proc.pid}) was killed before it moved 'champion', which "
            "stays v1; nothing took effect")
    assert said in caplog.text
    assert not [k for k in client.get_model_version(NAME, "2").tags if k.startswith("promotion.")]
    assert client.get_run(run_id).data.tags["promotion.aborted"] == said
    assert _log(client) == [] and "dealerml.move_in_progress" not in client.get_registered_model(NAME).tags


def test_chained_killed_registrations_give_challenger_back_to_the_last_good_version(home, tmp_path, caplog):
    from training import registry, tracking
    from training.errors import ConfigError

    assert (register_tiny(), register_tiny()) == ("1", "2")  # v1 champion, v2 the good challenger
    a = registering(home, tmp_path / "a-paused")
    _wait_for(tmp_path / "a-paused", a, "A's alias move")  # v3, holding the registry lock
    b = registering(home, tmp_path / "b-paused", waiting=tmp_path / "b-waiting")
    try:
        _wait_for(tmp_path / "b-waiting", b, "B waiting for the registry lock")
        _kill(a)  # A dies holding 'challenger' on v3; B gets the lock
        _wait_for(tmp_path / "b-paused", b, "B's alias move")
        c = cleaning(home, tmp_path / "c-waiting")  # another run starting: lists v3 dead, v4 alive
        _wait_for(tmp_path / "c-waiting", c, "the clean-up waiting for the lock")
        _kill(b)
        assert c.wait(timeout=60) == 0, c.stderr.read()
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    client = _client(home)
    assert sorted(int(mv.version) for mv in client.search_model_versions(f"name='{NAME}'")) == [1, 2, 4]
    assert client.get_registered_model(NAME).aliases == {"champion": 1, "challenger": 4}
    with pytest.raises(ConfigError, match=r"dealerml-churn@challenger is version 4, whose registration never completed"
                                          r": .* gives 'challenger' back to version 2, which held it before"):
        tracking.model_info(NAME, "challenger")
    with caplog.at_level(logging.WARNING, logger="training.registry"):
        assert registry.challenger_version(NAME) == "2"  # was: "has no 'challenger' version"
    assert "dropped v4, whose registration was killed" in caplog.text and "'challenger' is back on v2" in caplog.text
    assert client.get_registered_model(NAME).aliases == {"champion": 1, "challenger": 2}
