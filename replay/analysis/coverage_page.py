"""The coverage report as one self-contained HTML page: a heatmap (a row a channel and coin, a
column an hour, gaps marked) above the table. Inline SVG and CSS: no script, nothing fetched."""

from __future__ import annotations

import html
from collections import defaultdict

from schemas.gaps import utc_text

from .coverage import Coverage

CELL_H, LABEL_W, HEAD_H, RIGHT_PAD = 18, 220, 70, 70


def _color(covered: float, frames: int) -> str:
    if covered >= 0.999999:
        return "#2e9d57" if frames else "#b9dfc7"  # whole (pale: whole but quiet)
    if covered >= 0.99:
        return "#9ccc65"
    if covered >= 0.9:
        return "#f4c542"
    if covered >= 0.5:
        return "#f08a3c"
    return "#d64541"


def coverage_html(report: Coverage, title: str = "hlarchive coverage") -> str:
    rows = sorted({(c.channel, c.coin) for c in report.cells})
    hours = sorted({c.hour_ns for c in report.cells})
    at = {(c.channel, c.coin, c.hour_ns): c for c in report.cells}
    cell_w = max(6, min(48, 900 // max(1, len(hours))))  # a day fills the page; a month still fits
    width = LABEL_W + max(1, len(hours)) * cell_w + RIGHT_PAD
    height = HEAD_H + max(1, len(rows)) * CELL_H + 10
    svg = [f'<svg id="heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="coverage heatmap">']
    for j, hour in enumerate(hours):
        if j % max(1, len(hours) // 24) == 0:
            x = LABEL_W + j * cell_w + cell_w / 2
            svg.append(f'<text x="{x}" y="{HEAD_H - 6}" transform="rotate(-45 {x} {HEAD_H - 6})" class="hour">{html.escape(utc_text(hour)[5:13])}h</text>')
    for i, (channel, coin) in enumerate(rows):
        y = HEAD_H + i * CELL_H
        svg.append(f'<text x="{LABEL_W - 6}" y="{y + CELL_H - 5}" text-anchor="end" class="label">{html.escape(channel)} · {html.escape(coin)}</text>')
        for j, hour in enumerate(hours):
            cell = at.get((channel, coin, hour))
            if cell is None:
                continue
            x = LABEL_W + j * cell_w
            tip = f"{channel} {coin} {utc_text(hour)[:13]}h: {cell.frames:,} frames, {cell.covered:.2%} covered, {cell.gaps} gap(s)"
            svg.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{CELL_H - 2}" fill="{_color(cell.covered, cell.frames)}"><title>{html.escape(tip)}</title></rect>')
            if cell.gaps:
                svg.append(f'<text x="{x + (cell_w - 2) / 2}" y="{y + CELL_H - 6}" text-anchor="middle" class="gap">×</text>')
    svg.append("</svg>")
    by_stream: dict[tuple[str, str], list[str]] = defaultdict(list)
    for gap in report.gaps:
        by_stream[(gap.channel, gap.coin or "_all")].append(html.escape(gap.describe()))
    table = ["<table><thead><tr><th>channel</th><th>coin</th><th>hour (UTC)</th><th>frames</th><th>gaps</th><th>longest gap (s)</th><th>covered</th></tr></thead><tbody>"]
    for cell in sorted(report.cells, key=lambda c: (c.channel, c.coin, c.hour_ns)):
        flag = ' class="bad"' if cell.gaps else ""
        table.append(
            f"<tr{flag}><td>{html.escape(cell.channel)}</td><td>{html.escape(cell.coin)}</td><td>{utc_text(cell.hour_ns)[:13]}:00</td>"
            f"<td>{cell.frames:,}</td><td>{cell.gaps}</td><td>{cell.longest_gap_s:,.3f}</td><td>{cell.covered:.2%}</td></tr>"
        )
    table.append("</tbody></table>")
    gaps = "".join(f"<li>{line}</li>" for lines in by_stream.values() for line in lines) or "<li>none</li>"
    window = "" if report.start_ns is None or report.end_ns is None else f"{utc_text(report.start_ns)} to {utc_text(report.end_ns)} UTC"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2733; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }}
#verdict {{ font-size: 16px; font-weight: 600; margin: 8px 0 16px; }}
#verdict.complete {{ color: #1f7a43; }} #verdict.gaps {{ color: #b03a2e; }}
svg text.label {{ font-size: 12px; fill: #1d2733; }} svg text.hour {{ font-size: 10px; fill: #5b6b7b; }}
svg text.gap {{ font-size: 12px; font-weight: 700; fill: #1d2733; pointer-events: none; }}
.legend span {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -2px; }}
table {{ border-collapse: collapse; margin-top: 16px; font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid #e3e8ee; padding: 3px 10px; text-align: right; }} th:nth-child(-n+3), td:nth-child(-n+3) {{ text-align: left; }}
tr.bad td {{ background: #fdf0ee; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<div>{html.escape(window)}</div>
<div id="verdict" class="{'complete' if not report.gaps else 'gaps'}">{html.escape(report.verdict)}</div>
<div class="legend">covered:<span style="background:#2e9d57"></span>100%<span style="background:#9ccc65"></span>&ge;99%<span style="background:#f4c542"></span>&ge;90%<span style="background:#f08a3c"></span>&ge;50%<span style="background:#d64541"></span>&lt;50% &nbsp; × a gap</div>
{''.join(svg)}
<h2>Gaps</h2><ul id="gaps">{gaps}</ul>
<h2>By hour</h2>
{''.join(table)}
</body></html>
"""
