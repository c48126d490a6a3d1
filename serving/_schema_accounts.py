"""The account-level request and answer schemas: /churn_scores (scores, accounts not scored and why),
/churn_alerts, and /dealer_scores (the dealer ranking with its filters and reasons).

Built on :mod:`serving._schema_common`; the service and the tests import these names from
:mod:`serving.schemas`, which re-exports them.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from serving._schema_common import MAX_IDS, Filter, Id, _Request, _Response


# ---------------------------------------------------------------- churn
class ChurnScoresRequest(_Request):
    account_ids: list[Id] = Field(min_length=1, max_length=MAX_IDS)


class ChurnScore(_Response):
    account_id: str
    probability: float
    tier: str
    reasons: list[str]
    model_version: str
    as_of: dt.date


class NotScored(_Response):
    """A requested account without a churn score, and why (lapsed, never ordered, unknown)."""

    account_id: str
    reason: str


class ChurnScoresResponse(_Response):
    model_name: str
    model_version: str  # "dealerml-churn/<version>", as on every score
    as_of: dt.date
    scores: list[ChurnScore]
    not_scored: list[NotScored] = Field(default_factory=list)


class ChurnAlert(_Response):
    """One account that crossed into high risk at the run dated ``cutoff``."""

    account_id: str
    cutoff: dt.date
    probability: float | None
    tier: str | None
    reasons: list[str]
    expected_value: float | None
    model_version: str | None
    created_at: str | None


class ChurnAlertsResponse(_Response):
    """The newest ``count`` of the ``matched`` alerts (on or after ``since``), oldest first."""

    since: dt.date | None
    matched: int
    count: int
    alerts: list[ChurnAlert]
    note: str | None = Field(None, description="Set when there is no alerts table where the service reads alerts "
                             "(serving.alerts_target): `dealerml alerts` has not written there yet, so the 0 alerts "
                             "are not a quiet day; null when the table is there")


# ---------------------------------------------------------------- dealers
class DealerScoresRequest(_Request):
    region: Filter = Field(None, max_length=1000)
    segment: Filter = Field(None, max_length=1000)
    tier: Filter = Field(None, max_length=1000)
    account_ids: Filter = Field(None, max_length=MAX_IDS)
    # the default is capped by the id limit: with $DEALERML_SERVE_MAX_IDS=10 a default of 50 answered 50 dealers
    # (top_k 11 was refused) and the OpenAPI document said default 50, maximum 10
    top_k: int = Field(min(50, MAX_IDS), ge=1, le=MAX_IDS)


class DealerScore(_Response):
    rank: int
    account_id: str
    potential: float
    potential_low: float | None
    potential_high: float | None
    current_value: float | None = Field(description="Purchases in the last period (the model's horizon, e.g. 182 days)")
    annual_value: float | None = Field(
        None, description="Purchases in the 365 days before the as-of date (currency per year): what the tier is "
                          "read from (dealers.tier_thresholds, or the cut points of dealers.tier_shares; "
                          "/model_info summary.tier_thresholds)")
    segment: str | None
    segment_reason: str | None = Field(
        None, description="Why the segment, in words with the account's figures and the book median "
                          "('broader baskets than most accounts: 5.3 lines per order (book median 1.8)'); a "
                          "growing retail chain in lifecycle decline says why it keeps the segment")
    lifecycle: str | None
    lifecycle_reason: str | None = Field(
        None, description="Why the lifecycle stage ('value -62% on the same 182 days a year ago')")
    tier: str | None
    programme: str | None  # gold / silver / bronze, from the tier
    region: str | None
    reasons: list[str]


class DealerScoresResponse(_Response):
    model_name: str
    model_version: str
    as_of: dt.date
    churn_source: str | None = Field(
        None, description="Where the ranking's churn risk comes from, which the potentials depend on: the "
                          "dealerml-churn version (e.g. 'dealerml-churn/2', the churn champion when the service "
                          "started; dealers outside its population take 1 - BG/NBD P(alive)), or 'bgnbd' (no churn "
                          "champion: 1 - BG/NBD P(alive) for all). /model_info marks the dealers stale when the "
                          "churn champion moved since")
    matched: int
    dealers: list[DealerScore]
    unknown_ids: list[str] = Field(
        default_factory=list, description="account_ids without a dealer score (no order before as_of, or not in "
                                          "the book); only when none has one is the answer a 404")
