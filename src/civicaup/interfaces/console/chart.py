"""An inline SVG stacked-bar chart of decisions per day, computed here so the template only draws rectangles."""
from __future__ import annotations

from typing import Any

PALETTE = ("#1b5e20", "#0d47a1", "#b71c1c", "#e65100", "#4a148c", "#006064", "#827717", "#3e2723", "#263238",
           "#880e4f", "#01579b", "#33691e")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 260, 40, 40, 10


def stacked(data: dict[str, Any]) -> dict[str, Any]:
    """{"bars": [{"x", "w", "segments": [{"y", "h", "color", "label"}], "label"}], "legend", "ticks", size}."""
    days: list[str] = data["days"]
    series: list[str] = data["series"]
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    totals = [sum(data["counts"][d].values()) for d in days]
    top = max(totals or [0]) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT - 10) / max(len(days), 1)
    bars = []
    for i, d in enumerate(days):
        y = HEIGHT - BOTTOM
        segs = []
        for s in series:
            n = data["counts"][d].get(s, 0)
            if not n:
                continue
            h = n / top * plot_h
            y -= h
            segs.append({"y": round(y, 1), "h": round(h, 1), "color": colors[s], "label": f"{d}: {s} {n}"})
        w = min(slot * 0.7, 60.0)
        bars.append({"x": round(LEFT + i * slot + (slot - w) / 2, 1), "w": round(w, 1), "segments": segs,
                     "label": d[5:], "total": totals[i]})
    ticks = [{"y": round(HEIGHT - BOTTOM - v / top * plot_h, 1), "value": v} for v in sorted({0, top // 2, top})]
    return {"bars": bars, "legend": [{"label": s, "color": colors[s]} for s in series], "ticks": ticks,
            "width": WIDTH, "height": HEIGHT, "left": LEFT, "base": HEIGHT - BOTTOM}
