"""The paper report as one self-contained HTML page: the figures, the equity curve, each coin's
position over time and the fills on its price. Inline SVG and CSS, no script, nothing fetched."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any

W, H, PAD = 900, 220, 72  # PAD leaves room for the value labels at the left


def _time(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _thin(points: list[tuple[int, float]], most: int = 2000) -> list[tuple[int, float]]:
    step = max(1, len(points) // most)
    return points[::step] + ([points[-1]] if points and (len(points) - 1) % step else [])


def _chart(element_id: str, title: str, series: list[tuple[str, str, list[tuple[int, float]]]], marks: list[tuple[int, float, str]] = (), step: bool = False) -> str:
    """An SVG line chart: ``series`` of (name, colour, points); ``marks`` dots (time, value, colour)."""
    every = [p for _, _, pts in series for p in pts] + [(t, v) for t, v, _ in marks]
    if not every:
        return f'<svg id="{element_id}" width="{W}" height="40"><text x="8" y="24">{html.escape(title)}: nothing to draw</text></svg>'
    t0, t1 = min(t for t, _ in every), max(t for t, _ in every)
    v0, v1 = min(v for _, v in every), max(v for _, v in every)
    if v1 == v0:
        v0, v1 = v0 - 1, v1 + 1
    if t1 == t0:
        t1 = t0 + 1

    def x(t: int) -> float:
        return PAD + (t - t0) / (t1 - t0) * (W - 2 * PAD)

    def y(v: float) -> float:
        return H - PAD / 2 - (v - v0) / (v1 - v0) * (H - PAD)

    parts = [f'<svg id="{element_id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{html.escape(title)}">']
    parts.append(f'<text x="{PAD}" y="14" class="title">{html.escape(title)}</text>')
    parts.append(f'<text x="{PAD - 4}" y="{y(v1) + 4:.1f}" text-anchor="end" class="axis">{v1:,.2f}</text><text x="{PAD - 4}" y="{y(v0) + 4:.1f}" text-anchor="end" class="axis">{v0:,.2f}</text>')
    parts.append(f'<text x="{PAD}" y="{H - 4}" class="axis">{_time(t0)}</text><text x="{W - PAD}" y="{H - 4}" text-anchor="end" class="axis">{_time(t1)}</text>')
    parts.append(f'<line x1="{PAD}" y1="{H - PAD / 2}" x2="{W - PAD}" y2="{H - PAD / 2}" class="base"/>')
    for name, colour, points in series:
        pts = _thin(points)
        if step:
            coords = []
            for i, (t, v) in enumerate(pts):
                if i:
                    coords.append(f"{x(t):.1f},{y(pts[i - 1][1]):.1f}")
                coords.append(f"{x(t):.1f},{y(v):.1f}")
        else:
            coords = [f"{x(t):.1f},{y(v):.1f}" for t, v in pts]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{" ".join(coords)}"><title>{html.escape(name)}</title></polyline>')
    for t, v, colour in marks:
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)


def report_html(reports: list[dict[str, Any]], curves: dict[str, dict[str, Any]], title: str = "hlarchive paper report") -> str:
    """One page for the accounts of ``reports``; ``curves[user]``: ``equity`` points, ``held`` changes,
    ``fills``, and ``prices`` per coin."""
    sections = []
    for report in reports:
        user = report["user"]
        curve = curves.get(user, {})
        figures = [
            ("PnL (realised + unrealised + funding - fees)", _money(report["pnl"]), "pnl"),
            ("realised PnL", _money(report["realized_pnl"]), "realized_pnl"),
            ("unrealised PnL", _money(report["unrealized_pnl"]), "unrealized_pnl"),
            ("fees", _money(report["fees"]), "fees"),
            ("funding", _money(report["funding"]), "funding"),
            ("volume", _money(report["volume"]), "volume"),
            ("fills", f"{report['fills']:,}", "fills"),
            ("max drawdown", f"{_money(report['max_drawdown'])} ({report['max_drawdown_pct']:.2%})", "max_drawdown"),
            ("time in market", f"{report['time_in_market_pct']:.2%}", "time_in_market_pct"),
            ("equity", f"{_money(report['equity_start'])} → {_money(report['equity_end'])}", "equity"),
        ]
        rows = "".join(f'<tr data-figure="{key}"><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>' for name, value, key in figures)
        per_coin = "".join(
            f"<tr><td>{html.escape(c['coin'])}</td><td>{_money(c['realized_pnl'])}</td><td>{_money(c['unrealized_pnl'])}</td><td>{_money(c['fees'])}</td>"
            f"<td>{_money(c['funding'])}</td><td>{_money(c['volume'])}</td><td>{c['fills']:,}</td><td>{c['position']:g}</td></tr>"
            for c in report["coins"]
        )
        charts = [_chart("chart" if not sections else f"chart-{len(sections)}", "account value (USDC)", [("equity", "#1f6feb", curve.get("equity", []))])]
        held: dict[str, list[tuple[int, float]]] = {}
        for t, coin, size in curve.get("held", []):
            held.setdefault(coin, [(t, 0.0)] if coin not in held else held[coin]).append((t, size))
        for coin, points in sorted(held.items()):
            if report["to_ms"] is not None:
                points = points + [(report["to_ms"], points[-1][1])]
            charts.append(_chart(f"position-{html.escape(coin)}", f"{coin} position", [(coin, "#8250df", points)], step=True))
            fills = [(f["time"], float(f["px"]), "#1a7f37" if f["side"] == "B" else "#cf222e") for f in curve.get("fills", []) if f["coin"] == coin]
            charts.append(_chart(f"fills-{html.escape(coin)}", f"{coin} mark and fills (green buys, red sells)", [(coin, "#57606a", curve.get("prices", {}).get(coin, []))], fills))
        sections.append(
            f'<section class="account"><h2>{html.escape(user)}</h2><div class="when">{_time(report["from_ms"])} to {_time(report["to_ms"])} UTC (market time)</div>'
            f'<table class="figures">{rows}</table>{"".join(charts)}'
            f"<h3>By coin</h3><table class=\"coins\"><tr><th>coin</th><th>realised</th><th>unrealised</th><th>fees</th><th>funding</th><th>volume</th><th>fills</th><th>position</th></tr>{per_coin}</table></section>"
        )
    body = "".join(sections) or "<p>No account traded.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2733; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; font-family: monospace; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid #e3e8ee; padding: 3px 10px; text-align: right; }} th {{ text-align: left; font-weight: 500; }}
svg.chart {{ display: block; margin: 8px 0; }} svg text.title {{ font-size: 12px; font-weight: 600; }}
svg text.axis {{ font-size: 10px; fill: #57606a; }} svg line.base {{ stroke: #d0d7de; }}
</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>
"""
