"""Dealer segments, lifecycle stages, value tiers and programme levels: explainable rules.

**Segments** (``SegmentModel``): the five groups of a wholesaler's customers.

1. A documented scorecard on behaviour scores every group (below).
2. A ``channel_type`` attribute that names a group (e.g. "distributor", "retail chain",
   "online") adds ``attribute_weight`` (default 3) to that group's score, so a recorded kind
   wins unless behaviour clearly says otherwise (``attribute_weight=None``: the attribute
   decides outright). ``segment_source``: ``behaviour`` (no usable attribute, or one naming
   another group that the behaviour outweighed: the reason says so), ``attribute and behaviour``
   (both agree) or ``attribute`` (the attribute overturned the behaviour's choice).
   Each behaviour feature is put on a robust z-scale learned at ``fit`` (log for money and
   sizes; (x - median) / (IQR / 1.349)); each segment has a profile of signed weights
   (``PROFILES``: + means "high is typical of this group", - "low is typical"); the account
   goes to the group with the highest weighted sum (minus a bias for strategic key accounts,
   ``BIASES``; and behaviour names a strategic key account only among the top ``KEY_VALUE_SHARE``,
   10%, of the accounts by annual value: frequency and range rise with value and paid the bias for
   accounts at 1.6x the median). The reasons are the two features that
   added most to the winning score, in words with the account's own values. "High" and "low" are
   against this book, so the words say so, with the account's figure and the book median (over
   the accounts the model was fitted on): "orders more often than most accounts: 3 orders a year
   (book median 1)", never a bare "frequent" that 0.25 orders a month would contradict.

   A segment names the kind of account, read from how it orders; the lifecycle stage names its
   current trend. "Growing" in "growing retail chain" is the group's typical trend, one of four
   signals, not a condition: a retail chain whose value falls keeps its segment (its ordering
   pattern has not changed) and is ``decline`` in the lifecycle; ``DealerScorer.score`` then adds
   to its segment reason "in decline now (<lifecycle reason>): the segment is read from how it
   orders, not from its current trend".

   ============================  ===================================================================
   strategic key account         very high annual value (top 10%), orders more often, wide range
   growing retail chain          regular rhythm, broad baskets, orders more often; usually growing
   price-sensitive small shop    low annual value, small orders and baskets, buys on promotion
   channel distributor           bulk lines (many units per line), large orders, orders less often
   e-commerce reseller           orders through online channels, more often, smaller orders
   ============================  ===================================================================

``cluster_view`` is the independent check: k-means on the same standardized behaviour, its
silhouette, a Kruskal-Wallis test per feature across the assigned segments, and the
adjusted Rand index between clusters and segments.

**Lifecycle** (``lifecycle_stage``): from trend and tenure, see its docstring.
**Tiers** (``TierModel``): annual purchase value against thresholds (absolute, or the
value cut points of a share of accounts learned at ``fit``), plus a programme level.

Layout
    The code lives in private modules, split by responsibility so each stays readable; the
    names callers use are re-exported here (import them from this module):
    :mod:`models._segments_scorecard` (``SEGMENTS``, ``PROFILES``, ``BEHAVIOUR``, ...,
    ``SegmentModel``, ``NotFittedError``), :mod:`models._segments_words` (the reasons' words,
    ``_describe``), :mod:`models._segments_clusters` (``cluster_view``),
    :mod:`models._segments_lifecycle` (``LifecycleRules``, ``lifecycle_stage``,
    ``not_growing_now`` and the trend the scorecard also reads) and :mod:`models._segments_tiers`
    (``TierModel``, ``DEFAULT_TIER_SHARES``, ``DEFAULT_PROGRAMME``). Private helpers are not
    re-exported: import (or patch) them in their own module.
"""

from __future__ import annotations

from models._segments_clusters import cluster_view
from models._segments_lifecycle import LifecycleRules, lifecycle_stage, not_growing_now
from models._segments_scorecard import (  # noqa: F401 - BEHAVIOUR, BIASES, KEY_VALUE_SHARE, behaviour_matrix, NotFittedError: re-exported
    BEHAVIOUR,
    BIASES,
    KEY_VALUE_SHARE,
    PROFILES,
    SEGMENT_LABELS,
    SEGMENTS,
    NotFittedError,
    SegmentModel,
    behaviour_matrix,
)
from models._segments_tiers import DEFAULT_PROGRAMME, DEFAULT_TIER_SHARES, TierModel

__all__ = [
    "SEGMENTS", "SEGMENT_LABELS", "PROFILES", "SegmentModel", "cluster_view",
    "LifecycleRules", "lifecycle_stage", "not_growing_now", "TierModel", "DEFAULT_TIER_SHARES", "DEFAULT_PROGRAMME",
]
