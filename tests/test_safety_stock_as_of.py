"""The safety-stock file and /safety_stock said neither which period of history the sizing starts
after nor the date of the on-hand snapshot it compared with: a planner reading a file a week
later could not tell it was stale. Both now carry ``last_observed`` (the last period of history,
as /forecast answers it) and, per row with stock from the order book's inventory, ``on_hand_date``
(its snapshot date; the oldest where a series sums several; empty for --on-hand / a request's
on_hand), the same values on both sides."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

SIZED = ["A1/north", "A1/south", "B2/north", "C3/south"]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The four-series weekly book of test_safety_stock_planner (last sale 2024-05-13, an open
    week), A1 at south counted on 2024-05-03, the others on 2024-05-10; the policy file the CLI
    writes from it with the book's stock."""
    from _support_demand import _cli_book
    from typer.testing import CliRunner

    from training.cli import app

    tmp = tmp_path_factory.mktemp("as_of")
    cfg = _cli_book(tmp)
    inv = tmp / "inv.csv"
    inv.write_text(inv.read_text().replace("south,A1,7,2024-05-10", "south,A1,7,2024-05-03"))
    out = tmp / "pol.parquet"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEALERML_HOME", str(tmp / "home"))
        res = CliRunner().invoke(app, ["safety-stock", "--config", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return SimpleNamespace(cfg=cfg, tmp=tmp, pol=pd.read_parquet(out).set_index("unique_id"))


def test_the_policy_file_says_its_last_period_and_each_stock_snapshot_date(book):
    from training.config import load_config
    from training.demand_config import demand_settings, load_demand_series

    cfg = load_config(book.cfg)
    df, _ = load_demand_series(cfg, demand_settings(cfg))
    last = pd.Timestamp(df["ds"].max()).date().isoformat()
    assert last == "2024-05-06"  # the week of 05-13 is still open at the end of the book: left out
    pol = book.pol
    assert pol["last_observed"].tolist() == [last] * len(pol)  # the no_policy row too
    assert pol["on_hand_date"].to_dict() == {"A1/north": "2024-05-10", "A1/south": "2024-05-03",
                                             "B2/north": "2024-05-10", "C3/south": "2024-05-10",
                                             "ZZ9/north": "2024-05-10"}
    assert pol.loc["ZZ9/north", "action"] == "no_policy"
    # A1 at south was counted before the last week of history began: its suggestion says how old
    # the count is (test_safety_stock_on_hand_date); the others, counted in that week, say nothing
    assert pol.loc["A1/south", "suggestion"].endswith(
        "stock counted 2024-05-03, 10 days before the sizing starts (2024-05-13): demand since then is not "
        "subtracted from it (recount it or pass a newer snapshot)")
    assert not pol.drop("A1/south")["suggestion"].fillna("").str.contains("stock counted").any()
    cols = list(pol.columns)
    assert cols[cols.index("on_hand") + 1] == "on_hand_date"


def test_stock_from_an_on_hand_file_has_no_snapshot_date(book, monkeypatch):
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("DEALERML_HOME", str(book.tmp / "home"))
    oh = book.tmp / "stock.csv"
    oh.write_text("sku,location,on_hand\nA1,north,4\nB2,north,5\n")
    out = book.tmp / "given.csv"
    res = CliRunner().invoke(app, ["safety-stock", "--config", str(book.cfg), "--out", str(out), "--on-hand", str(oh)])
    assert res.exit_code == 0, res.output
    pol = pd.read_csv(out).set_index("unique_id")
    assert pol["on_hand_date"].isna().all() and pol.loc["A1/north", "on_hand"] == 4.0
    assert pol["last_observed"].tolist() == ["2024-05-06"] * len(pol)


def test_the_service_answers_the_dates_the_file_carries(book):
    """/safety_stock on a forecaster of the same series and the same order book: last_observed and
    each row's on_hand_date equal the file's; on-hand sent in the request has no date."""
    from models.demand import DemandForecaster
    from serving.demand import DemandBackend
    from serving.schemas import SafetyStockRequest, SafetyStockResponse
    from training.config import load_config
    from training.data import load_order_book
    from training.demand_config import demand_settings, load_demand_series

    cfg = load_config(book.cfg)
    s = demand_settings(cfg)
    df, _ = load_demand_series(cfg, s)
    est = DemandForecaster(freq=s.freq, h=s.horizon, **s.forecaster_kwargs(int(cfg.seed or 0))).fit(df)
    be = DemandBackend.build(est, SimpleNamespace(name="dealerml-demand", version="1"), load_order_book(cfg), cfg)
    ans = be.safety_stock(SafetyStockRequest(series_ids=SIZED, lead_time_days=7.0))
    SafetyStockResponse.model_validate(ans)
    assert ans["last_observed"] == book.pol["last_observed"].iloc[0] == be.summary()["last_observed"]
    rows = {r["unique_id"]: r for r in ans["rows"]}
    for u in SIZED:
        assert rows[u]["on_hand"] == book.pol.loc[u, "on_hand"], u
        assert rows[u]["on_hand_date"] == book.pol.loc[u, "on_hand_date"], u
    given = be.safety_stock(SafetyStockRequest(series_ids=SIZED[:2], lead_time_days=7.0, on_hand={SIZED[0]: 3.0}))
    a, b = given["rows"]
    assert (a["on_hand"], a["on_hand_date"]) == (3.0, None)  # the request's stock: no snapshot date
    assert (b["on_hand"], b["on_hand_date"]) == (7.0, "2024-05-03")
    # the stale count said as in the file (the order itself differs: 7 days of lead time asked here)
    note = book.pol.loc["A1/south", "suggestion"].split("; ")[-1]
    assert note.startswith("stock counted 2024-05-03") and b["message"].endswith("; " + note)
    assert "stock counted" not in (a["message"] or "")
    # the request may date its stock (on_hand_date); a count four weeks old is said so
    dated = be.safety_stock(SafetyStockRequest(series_ids=SIZED[:2], lead_time_days=7.0, on_hand={SIZED[0]: 3.0},
                                               on_hand_date="2024-04-15"))
    a, b = dated["rows"]
    assert (a["on_hand"], a["on_hand_date"]) == (3.0, "2024-04-15") and b["on_hand_date"] == "2024-05-03"
    assert "stock counted 2024-04-15, 28 days before the sizing starts (2024-05-13)" in a["message"]
    SafetyStockResponse.model_validate(dated)


@pytest.mark.parametrize(("body", "said"), [
    ({"on_hand": {"A1/north": 3.0}, "on_hand_date": "yesterday"},
     "on_hand_date: must be a date like 2024-05-10 (YYYY-MM-DD); got 'yesterday'"),
    ({"on_hand": {"A1/north": 3.0}, "on_hand_date": "2999-01-01"},
     "on_hand_date: 2999-01-01 is in the future"),
    ({"on_hand_date": "2024-05-10"},
     "on_hand_date: is the date of the request's on_hand; give on_hand too"),
])
def test_a_bad_request_stock_date_is_a_400_naming_field_and_value(body, said):
    from pydantic import ValidationError

    from serving.errors import describe_validation_errors
    from serving.schemas import SafetyStockRequest

    with pytest.raises(ValidationError) as err:
        SafetyStockRequest.model_validate({"series_ids": ["A1/north"], **body})
    answer = describe_validation_errors(err.value.errors(), SafetyStockRequest)
    assert said in answer["error"], answer["error"]


def test_on_hand_dates_per_series():
    """A series over several locations is as old as its oldest latest snapshot; an undated
    latest row leaves its series undated; no snapshot_date column, no dates."""
    from training.demand_config import on_hand_by_series, on_hand_dates_by_series

    inv = pd.DataFrame({"sku": ["A", "A", "A", "B", "B", "C"], "location": ["n", "n", "s", "n", "s", "n"],
                        "on_hand": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                        "snapshot_date": pd.to_datetime(["2024-05-01", "2024-05-10", "2024-05-08", "2024-05-10",
                                                         None, "2024-04-30"])})
    assert on_hand_dates_by_series(inv, ["sku", "location"]).to_dict() == {
        "A/n": "2024-05-10", "A/s": "2024-05-08", "B/n": "2024-05-10", "B/s": None, "C/n": "2024-04-30"}
    assert on_hand_dates_by_series(inv, ["sku"]).to_dict() == {"A": "2024-05-08", "B": None, "C": "2024-04-30"}
    assert on_hand_by_series(inv, ["sku"]).to_dict() == {"A": 5.0, "B": 9.0, "C": 6.0}  # the stock those dates are of
    assert on_hand_dates_by_series(inv.drop(columns="snapshot_date"), ["sku"]) is None


def test_a_stock_date_is_in_the_future_only_after_todays_date_anywhere_on_earth():
    """A client east of the server counts its stock on its own today, which can be the server's
    tomorrow (UTC+14 is a day ahead of UTC from 10:00 UTC): accepted; a day later is refused."""
    import datetime as dt

    from pydantic import ValidationError

    from serving.schemas import SafetyStockRequest, latest_today

    utc_today = dt.datetime.now(dt.UTC).date()
    latest = latest_today()
    assert utc_today <= latest <= utc_today + dt.timedelta(days=1)
    if dt.datetime.now(dt.UTC).hour >= 10:
        assert latest == utc_today + dt.timedelta(days=1)
    body = {"series_ids": ["A1/north"], "on_hand": {"A1/north": 3.0}}
    req = SafetyStockRequest.model_validate({**body, "on_hand_date": latest.isoformat()})
    assert req.on_hand_date == latest
    with pytest.raises(ValidationError, match="is in the future"):
        SafetyStockRequest.model_validate({**body, "on_hand_date": (latest + dt.timedelta(days=1)).isoformat()})
