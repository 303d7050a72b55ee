"""Bar charts as inline SVG, for pages that load nothing and run no script.

Each chart is one ``<svg>`` element that scales with its container (a ``viewBox`` and no fixed
width) and is well-formed XML. Every bar carries its numbers twice: ``data-category``,
``data-series`` and ``data-value`` attributes that a test or a script can read back, and a
``<title>`` (a tooltip, read by screen readers) such as ``2025-03-03 · erasure: 4``. The chart
has a ``role="img"`` and an ``aria-label`` with its title; a legend is returned as HTML beside
it (:func:`legend`), so it wraps on a narrow screen. All text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["BAD", "GOOD", "PALETTE", "WARN", "Series", "bar_chart", "hbar_chart", "legend"]

#: Colours with enough contrast on white, distinguishable in grey when printed.
PALETTE = ("#1f5fa8", "#e08a00", "#2e8540", "#8a3ea8", "#5a6470", "#b3261e", "#0f8a8a")
GOOD, BAD, WARN = "#2e8540", "#b3261e", "#e08a00"

_W, _H = 480, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 36, 8, 10, 44
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_CHAR_W = 6.2  # the width of a character of _FONT, about


@dataclass(frozen=True)
class Series:
    """One named series of values, one per category, drawn in ``colour``."""

    name: str
    values: Sequence[float]
    colour: str


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _ticks(top: float, percent: bool) -> list[float]:
    if percent:
        return [0, 25, 50, 75, 100]
    step = max(1, -(-int(top) // 4))
    return [step * i for i in range(5)]


def _svg(title: str, body: list[str], height: int = _H, chart_id: str = "") -> Markup:
    label = escape(title)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height}" role="img" '
        f'aria-label="{label}" data-chart="{escape(chart_id)}" class="chart" '
        f'preserveAspectRatio="xMidYMid meet"><title>{label}</title>'
        + "".join(body) + "</svg>")


def bar_chart(chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series],
              *, stacked: bool = True, percent: bool = False,
              reference: tuple[float, str] | None = None) -> Markup:
    """Vertical bars, one group per category: the series stacked (``stacked``) or side by
    side. ``percent`` draws values as 0-100 on a fixed axis; ``reference`` draws a dashed
    line at a value with a label (a target such as 100 %). Every bar is drawn, zero ones with
    no height, so reading the data back gives every category and series."""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    totals = [sum(s.values[i] for s in series) if stacked else max(
        (s.values[i] for s in series), default=0) for i in range(len(categories))]
    top = 100.0 if percent else float(max([*totals, 1]))
    ticks = _ticks(top, percent)
    top = max(top, float(ticks[-1]))
    body: list[str] = []
    for tick in ticks:
        y = _TOP + plot_h - plot_h * tick / top
        body.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="#d5d9df" stroke-width="1"/>'
                    f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" {_FONT} '
                    f'fill="#4a5360">{_num(tick)}{"%" if percent else ""}</text>')
    slot = plot_w / max(len(categories), 1)
    bar_w = slot * 0.7 / (1 if stacked else max(len(series), 1))
    every = max(1, -(-len(categories) // 8))  # at most 8 category labels
    # Labels wider than their slot are turned so that they do not run into each other.
    turn = max((len(c) for c in categories), default=0) * _CHAR_W > slot * every * 0.9
    for i, category in enumerate(categories):
        x0, base = _LEFT + slot * i + slot * 0.15, 0.0
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / top
            x = x0 if stacked else x0 + j * bar_w
            y = _TOP + plot_h - h - (plot_h * base / top if stacked else 0)
            shown = f"{_num(value)}%" if percent else _num(value)
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{s.colour}" data-category="{escape(category)}" '
                f'data-series="{escape(s.name)}" data-value="{_num(value)}">'
                f'<title>{escape(category)} · {escape(s.name)}: {shown}</title></rect>')
            if stacked:
                base += value
        if i % every == 0:
            cx, ty = _LEFT + slot * i + slot / 2, _H - _BOTTOM + 14
            place = (f'text-anchor="end" transform="rotate(-30 {cx + 4:.1f} {ty - 4})"'
                     if turn else 'text-anchor="middle"')
            body.append(f'<text x="{cx + (4 if turn else 0):.1f}" y="{ty - (4 if turn else 0)}" '
                        f'{place} {_FONT} fill="#1b1f24">{escape(category)}</text>')
    if reference is not None:
        value, label = reference
        y = _TOP + plot_h - plot_h * value / top
        body.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="#1b1f24" stroke-dasharray="4 3" data-reference="{_num(value)}"/>'
                    f'<text x="{_W - _RIGHT}" y="{y - 3:.1f}" text-anchor="end" {_FONT} '
                    f'fill="#1b1f24">{escape(label)}</text>')
    body.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_TOP + plot_h}" '
                f'y2="{_TOP + plot_h}" stroke="#1b1f24"/>')
    return _svg(title, body, chart_id=chart_id)


def hbar_chart(chart_id: str, title: str, items: Sequence[tuple[str, float, str]],
               *, series: str = "requests") -> Markup:
    """Horizontal bars, one per ``(label, value, colour)``, each label on its own line above
    its bar (long labels are shortened on the drawing; the ``<title>`` and ``data-category``
    keep them whole). Suits reasons and ranked lists."""
    row_h, label_w = 34, _W - 60
    top = float(max([v for _, v, _ in items] + [1]))
    body: list[str] = []
    for i, (label, value, colour) in enumerate(items):
        y = 6 + i * row_h
        shown = label if len(label) <= 70 else label[:69] + "…"
        w = (label_w - 10) * value / top
        body.append(
            f'<text x="4" y="{y + 10}" {_FONT} fill="#1b1f24">{escape(shown)}</text>'
            f'<rect x="4" y="{y + 14}" width="{w:.1f}" height="12" fill="{colour}" '
            f'data-category="{escape(label)}" data-series="{escape(series)}" '
            f'data-value="{_num(value)}"><title>{escape(label)}: {_num(value)}</title></rect>'
            f'<text x="{w + 10:.1f}" y="{y + 24}" {_FONT} fill="#1b1f24">{_num(value)}</text>')
    return _svg(title, body, height=max(40, 10 + row_h * len(items)), chart_id=chart_id)


def legend(series: Sequence[Series]) -> Markup:
    """The series' names and colours as an HTML list (``<ul class="legend">``)."""
    return Markup('<ul class="legend">' + "".join(
        f'<li><span class="swatch" style="background:{s.colour}"></span>{escape(s.name)}</li>'
        for s in series) + "</ul>")
