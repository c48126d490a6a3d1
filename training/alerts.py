"""Risk tiers and churn alerts: only accounts that newly crossed into high risk.

``assign_tiers`` turns probabilities into high / medium / low from the expected value of a
call and the call capacity (see ``training.churn_backtest.TierSettings``).

``record_alerts(scores, target, cutoff, ...)`` records, once per cutoff, the accounts whose tier
became ``high`` since the last run, in three tables of the target database (DuckDB file by
default, PostgreSQL / SQLite by URL): the alerts, the last tier per account and the cutoffs
already run. Re-running a cutoff adds nothing; an optional webhook POST of the new alerts
(signed, with a stable delivery id and bounded retries) happens last inside the same
transaction, so a delivery that finally fails records nothing. ``read_alerts`` reads them back
(dates as text, ``alert_dates_as_text``). ``dealerml alerts`` and the service's GET
/churn_alerts call these.

Layout
    The code lives in private modules, split by responsibility so each stays readable; the
    names callers use are re-exported here (import them from this module):
    :mod:`training._alerts_tiers` (tiering: ``assign_tiers``, ``TIERS``),
    :mod:`training._alerts_store` (the state machine and the tables: ``record_alerts``,
    ``read_alerts``, typed / text date columns, idempotency; its docstring has the details)
    and :mod:`training._alerts_webhook` (delivery: signing, retries, the per-attempt deadline).
    The webhook's timing constants (``WEBHOOK_TIMEOUT_S``, ``WEBHOOK_BACKOFF_S``, ...) are not
    re-exported: ``_post`` reads them from :mod:`training._alerts_webhook`, so patch them there.
"""

from __future__ import annotations

from training._alerts_store import (
    AlertRun,
    alert_dates_as_text,
    read_alerts,
    record_alerts,
    recorded_run,
)
from training._alerts_tiers import TIERS, assign_tiers
from training._alerts_webhook import (  # noqa: F401 - re-exported: the webhook's public names
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_SECRET_ENV,
    WEBHOOK_TIMEOUT_ENV,
    _hook_name,
    webhook_delivery_id,
    webhook_secret,
    webhook_signature,
    webhook_timeout_seconds,
)

__all__ = ["assign_tiers", "record_alerts", "recorded_run", "read_alerts", "alert_dates_as_text", "AlertRun", "TIERS"]
