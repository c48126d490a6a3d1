"""The synthetic dealer network: dealerml's embedded default order book, with its ground truth.

A manufacturer of outdoor power equipment (categories Machines, Spare Parts, Consumables,
Accessories, Garden, Winter) sells through dealers in five regions (North, South, East, West,
Central) from ``n_locations`` warehouses (``DC1``..). Prices in EUR, quantities in units, one row
per order line. ``generate(out_dir)`` writes the contract tables (``training/contract.py``):

- ``order_lines.parquet``: order_id, order_date (day, timestamp[ns]), account_id, sku, quantity
  (> 0, whole units), unit_price (> 0, net of contract discount and promotion), line_amount
  (quantity x unit_price), location, channel (EDI / field / phone / web), category, promo (0/1),
  currency. No returns or cancellations: the book is clean.
- ``accounts.csv``: account_id, region, channel_type (the kind of dealer as recorded in the CRM:
  key_account / retail_chain / independent_shop / distributor / online; it matches the true
  segment for ~90 % of accounts, and only ~60 % of strategic key accounts are recorded as such),
  onboarding_date (may precede ``start``), credit_limit (EUR), payment_terms_days.
- ``service_events.csv``: event_date, account_id, kind (complaint / return / ticket),
  resolution_days (empty = still open at ``end``).
- ``inventory.csv``: location, sku, on_hand (units), snapshot_date (= ``end``): the stock of a
  base-stock policy (90th percentile of last year's demand over lead time + one week) at a random
  point of the cycle, with 8 % stock-outs and 4 % overstock.
- ``lead_times.csv``: sku, location, lead_time_days (mean), lead_time_std_days.
- ``promo_calendar.csv`` (the ``promotions`` table of the contract; campaign_id is extra): the
  planned campaigns, campaign_id, sku, start_date, end_date (inclusive), discount (share off the
  price). It is the known-ahead promo driver (``data.promotions`` + ``demand.drivers: [promo]``): the
  ``promo`` flag of order lines exists only where something sold, so a weekly share built from
  sales would leak that the week had demand.
- ``config.yaml``: an experiment config whose ``data:`` names these files by relative path,
  with ``as_of`` = ``end``.

How the data are made (the planted signal):

- Five customer groups with their own order rhythm (mean gap, and the gamma shape of the
  inter-order gap: regular or bursty), basket breadth, units per line, discounts and promotion
  response: ``strategic_key_account`` (few, big, an order every ~6 days, broad baskets),
  ``growing_retail_chain`` (regular ~9-day rhythm, mostly growing), ``price_sensitive_small_shop``
  (many, small baskets, irregular ~18-day gaps; order more often and switch to promoted SKUs
  during campaigns), ``channel_distributor`` (bulk lines every ~40 days from a few SKUs) and
  ``ecommerce_reseller`` (an order of 1-2 lines every ~4 days, weekend orders, Q4 / Black Friday
  peak). Regions have different segment mixes (South: shops, West: e-commerce, Central: key
  accounts and distributors).
- Weekly profile (B2B orders on weekdays), yearly seasonality per segment and per category
  (Garden peaks in May, Winter in November-February: off-season lines are thinned out and carry
  fewer units), Christmas and August dips for B2B, one two-week promotion campaign every ~two
  months on part of one or two categories (promoted lines: 1.4-2.2x the units, 10-25 % off),
  a 3 %/year list-price increase each January, per-SKU unit trends, a long tail of SKU
  popularity (weight ~ 1/(rank+5)^1.5: many intermittent or lumpy SKUs, some smooth ones), 20 %
  of SKUs with overdispersed (lumpy) quantities, and ~8 % of SKUs that replace a same-category
  predecessor mid-period.
- Monthly account-level noise (lognormal, sigma 0.2) on the order intensity, so trends are not
  perfectly clean.

Ground truth (``truth_accounts.csv``, one row per account):

- ``segment``: the planted customer group (one of :data:`SEGMENTS`).
- ``lifecycle_stage`` as of ``end``: ``growth`` (order intensity rising 25-60 %/year, or an
  account onboarded in the last ~18 months still ramping up), ``maturity`` (flat), ``decline``
  (since ``decline_start`` the order intensity falls 45-70 %/year, baskets and units shrink and
  complaints rise up to ~2.6x). Full churners are ``decline``; partial churners keep the stage of
  the rest of their business.
- ``churn_kind``: ``none``; ``full`` (the account stops ordering: over the 90-180 days from
  ``decline_start`` its order rate falls to ~10 %, baskets shrink to ~30 %, complaints rise up
  to 5x and take longer to resolve; from ``churn_date`` on it places no order); ``partial`` (it
  stops buying ``dropped_category``, one of its main categories: the category fades out over the
  60 days from ``decline_start`` and is never bought from ``churn_date`` on, while the rest of
  its business goes on; complaints are 3x from ``decline_start`` to 30 days after).
- ``churn_date``: for ``full`` the first day with no more orders (the last order is before it;
  see ``last_order_date``); for ``partial`` the day the category is dropped; empty for ``none``.
- ``dropped_category``: the category a partial churner stops buying; empty otherwise.
- ``decline_start``: first day of the planted decline (full churners: churn_date minus 90-180 days;
  partial: churn_date minus 60 days; active decliners: 120-400 days before ``end``); empty otherwise.
- ``region``, ``onboarding_date`` and the realised ``n_orders``, ``first_order_date``,
  ``last_order_date``, ``revenue`` (EUR) for convenience.

``truth_skus.csv``: sku, category, ``demand_pattern`` (smooth / erratic / intermittent / lumpy:
the realised class of the SKU's total weekly units over the weeks it was on sale, by
Syntetos-Boylan cut-offs ADI 1.32 and CV^2 0.49; ``no_demand`` if never sold), ``adi``, ``cv2``,
``popularity`` (planted share of picks), ``lumpy_quantities`` (planted overdispersion),
``trend_per_year`` (planted log growth of units per line), ``list_price`` (EUR at start),
``launch_date`` / ``discontinued_date`` (successor / predecessor SKUs; empty otherwise).

Same arguments, same bytes. Accounts are simulated in chunks of 1,000, so memory stays bounded
(~0.5 GB peak at any size). About 225 lines per account over three years, so
``n_accounts=45_000`` (or ``lines_target=10_000_000``) gives ~10 million lines in ~35 s.
"""

from __future__ import annotations

from training.synthetic._generate import SEGMENTS, estimate_lines_per_account, generate

__all__ = ["generate", "estimate_lines_per_account", "SEGMENTS"]
