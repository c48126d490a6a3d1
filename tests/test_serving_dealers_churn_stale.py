"""The dealer ranking's churn risk and a churn promote / rollback after start-up (fast, in process).

The service ranks dealers with the churn champion it loaded at start-up. After `dealerml promote churn`
(or `rollback churn`), `dealerml score dealers` ranks with the new churn champion while the running
service kept the old one, with the same dealers version and as-of date and nothing saying so: measured on
the synthetic book (400 dealers), potentials differed by up to 5,384, the order and 44 dealers' reasons
differed, and /model_info called the dealers model fresh (`stale: false`). Now the dealers slot is stale
with a reason naming both churn versions and the fix, and /dealer_scores names its `churn_source`.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pandas as pd
import pytest

from serving.state import ModelSlot, ServingState


class _Registry:
    """The champion aliases as ``serving.loader.registry_champions`` reads them (the real store's reads are
    tested in test_serving_state): asked only for the names the loader passes."""

    def __init__(self, **champions: str | None) -> None:
        self.champions = {f"dealerml-{k}": v for k, v in champions.items()}
        self.asked: list[list[str]] = []

    def __call__(self, names: list[str]) -> dict[str, str | None]:
        self.asked.append(list(names))
        return {n: self.champions.get(n) for n in names}

    def set(self, key: str, version: str | None) -> None:  # what promote / rollback do to the alias
        self.champions[f"dealerml-{key}"] = version


def _registry(monkeypatch, **champions: str | None) -> _Registry:
    from serving import loader

    reg = _Registry(**champions)
    monkeypatch.setattr(loader, "registry_champions", reg)
    return reg


def _loaded(keys: tuple[str, ...], churn_source: str) -> ServingState:
    """A state whose slots are loaded (dealers ranked with ``churn_source``), not checked against the registry yet."""
    st = ServingState([ModelSlot(k, f"dealerml-{k}") for k in keys], "cfg.yaml")
    for k in keys:
        st.succeed(k, SimpleNamespace(churn_source=churn_source) if k == "dealers" else object())
        st.slots[k].version = "1"
    return st


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dealerml.serving.loader"]


@pytest.mark.parametrize("keys", [("churn", "dealers"), ("dealers",)])
def test_a_churn_promote_after_start_up_makes_the_dealer_ranking_stale(monkeypatch, caplog, keys):
    from serving.loader import check_champions

    reg = _registry(monkeypatch, dealers="1", churn="1")
    st = _loaded(keys, "dealerml-churn/1")
    dealers = st.slots["dealers"]
    with caplog.at_level(logging.WARNING, logger="dealerml.serving.loader"):
        check_champions(st)
        assert dealers.describe()["stale"] is False and not _lines(caplog)
        reg.set("churn", "2")  # promote churn
        check_champions(st)
        check_champions(st)  # logged once per move
    d = dealers.describe()
    assert d["stale"] is True and d["version"] == "1" and d["registry_champion"] == "1", d
    assert d["stale_reason"] == (
        "the churn champion (dealerml-churn) is now version 2; this service's dealer ranking (dealerml-dealers "
        "version 1) still takes churn risk from dealerml-churn version 1, as loaded at start-up, so its potentials "
        "and order differ from `dealerml score dealers`: restart the service to rank with version 2")
    assert [m for m in _lines(caplog) if "dealer ranking" in m] == [d["stale_reason"]]
    assert all("dealerml-churn" in names for names in reg.asked)  # also in a deployment without churn
    reg.set("churn", "1")  # rollback churn: fresh again
    check_champions(st)
    assert dealers.describe()["stale"] is False and dealers.describe()["stale_reason"] is None
    # the dealers' own champion moving is said as before, beside the churn move
    reg.set("dealers", None)
    reg.set("churn", None)
    check_champions(st)
    reason = dealers.describe()["stale_reason"]
    assert reason.startswith("the champion of dealerml-dealers is now no version (the alias was removed); this "
                             "service still serves version 1")
    assert "the churn champion (dealerml-churn) is now no version (the alias was removed; score dealers takes " \
           "1 - BG/NBD P(alive))" in reason


def test_a_churn_champion_registered_after_a_bgnbd_ranking_makes_it_stale(monkeypatch):
    """Started without a churn champion (1 - BG/NBD P(alive)); a churn model trained since is what
    `score dealers` ranks with."""
    from serving.loader import check_champions

    reg = _registry(monkeypatch, dealers="1", churn=None)
    st = _loaded(("dealers",), "bgnbd")
    check_champions(st)
    assert st.slots["dealers"].describe()["stale"] is False
    reg.set("churn", "1")  # a churn model trained since
    check_champions(st)
    d = st.slots["dealers"].describe()
    assert d["stale"] is True and "still takes churn risk from 1 - BG/NBD P(alive) (there was no churn champion)" \
        in d["stale_reason"] and d["stale_reason"].endswith("restart the service to rank with version 1")


def test_dealer_scores_name_the_churn_version_behind_the_potentials():
    from serving.dealers import DealersBackend
    from serving.schemas import DealerScoresRequest, DealerScoresResponse

    table = pd.DataFrame({"account_id": ["A1", "A2"], "potential": [10.0, 5.0], "segment": ["s", "s"],
                          "tier": ["key", "growth"], "region": ["West", "East"],
                          "reason_1": ["r", "r"], "reason_2": ["", ""], "reason_3": ["", ""]})
    backend = DealersBackend(model_name="dealerml-dealers", model_version="dealerml-dealers/1",
                             as_of=pd.Timestamp("2025-01-01"), table=table)
    backend.churn_source = "dealerml-churn/2"
    answer = DealerScoresResponse.model_validate(backend.scores(DealerScoresRequest(top_k=5)))
    assert answer.churn_source == "dealerml-churn/2" and [d.account_id for d in answer.dealers] == ["A1", "A2"]
    assert "churn_source" in DealerScoresResponse.model_json_schema()["properties"]
