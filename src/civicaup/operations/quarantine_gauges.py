"""The quarantine as Prometheus gauges, read from the store when ``GET /metrics`` is scraped (in ``serve``):
``civicaup_quarantine_messages{pack}`` and ``civicaup_quarantine_oldest_age_seconds{pack}`` for messages with
status ``held`` (waiting for an approver). Not in the multiprocess files: the store is the truth."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("civicaup.metrics")


class QuarantineCollector:
    """A prometheus_client collector; *packs* always get a value (0 when nothing is held)."""

    def __init__(self, engine: Any, packs: Iterable[str] = ()) -> None:
        self.engine = engine
        self.packs = tuple(packs)
        self._warned = False

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import func, select

        from civicaup.stores.tables import mail_quarantine as Q

        count = GaugeMetricFamily("civicaup_quarantine_messages", "Messages held in quarantine for approval",
                                  labels=["pack"])
        oldest = GaugeMetricFamily("civicaup_quarantine_oldest_age_seconds",
                                   "Age of the oldest message held in quarantine (0 when none)", labels=["pack"])
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(Q.c.policy, func.count(), func.min(Q.c.created_at))
                                    .where(Q.c.status == "held").group_by(Q.c.policy)).all()
        except Exception as exc:  # noqa: BLE001 - the other metrics are still served
            if not self._warned:
                self._warned = True
                log.warning("metrics: cannot read the quarantine (%s: %s)", type(exc).__name__, str(exc)[:200])
            return []
        now = datetime.now(timezone.utc)
        found = {r[0]: (int(r[1]), r[2]) for r in rows}
        for pack in sorted(set(self.packs) | set(found)):
            n, first = found.get(pack, (0, None))
            count.add_metric([pack], n)
            if isinstance(first, str):  # some drivers hand back text
                first = datetime.fromisoformat(first)
            if first is not None and first.tzinfo is None:
                first = first.replace(tzinfo=timezone.utc)  # SQLite keeps UTC, naive
            oldest.add_metric([pack], max(0.0, (now - first).total_seconds()) if first is not None else 0.0)
        return [count, oldest]
