"""Hand-written SVG charts (no plotting library): a line chart of throughput vs concurrency and a
grouped bar chart of latency percentiles. Pure functions returning the SVG text."""

import math
from xml.sax.saxutils import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
W, H = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 80, 190, 48, 60


def _num(v):
    """Compact tick label: 1.5k, 20k, 1.2M, 0.5."""
    if v >= 1e6:
        s, suf = v / 1e6, "M"
    elif v >= 1e3:
        s, suf = v / 1e3, "k"
    else:
        s, suf = v, ""
    text = f"{s:.1f}" if s < 10 and s != int(s) else f"{s:.0f}"
    return text + suf


def nice_ticks(lo, hi, n=5):
    """Linear ticks covering [lo, hi] with a 1/2/5 step."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t < hi + step * 0.999:
        ticks.append(round(t, 10))
        t += step
    return ticks


def log_ticks(lo, hi):
    """Powers of ten covering [lo, hi] (lo > 0)."""
    a = math.floor(math.log10(max(lo, 1e-9)))
    b = math.ceil(math.log10(max(hi, lo * 10)))
    return [10.0 ** e for e in range(a, b + 1)]


class _Scale:
    def __init__(self, lo, hi, log, px0, px1):
        self.lo, self.hi, self.log, self.px0, self.px1 = lo, hi, log, px0, px1

    def __call__(self, v):
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.px0 + f * (self.px1 - self.px0)


def _frame(title, ylabel, xlabel, yscale, ticks, tick_fmt):
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2:.0f}" y="24" text-anchor="middle" font-size="15" '
           f'font-weight="bold">{escape(title)}</text>']
    x0, x1 = LEFT, W - RIGHT
    for t in ticks:
        y = yscale(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(tick_fmt(t))}</text>')
    out.append(f'<line x1="{x0}" y1="{TOP}" x2="{x0}" y2="{H - BOTTOM}" stroke="#333"/>')
    out.append(f'<line x1="{x0}" y1="{H - BOTTOM}" x2="{x1}" y2="{H - BOTTOM}" stroke="#333"/>')
    out.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{H - 18}" text-anchor="middle">'
               f'{escape(xlabel)}</text>')
    out.append(f'<text x="18" y="{(TOP + H - BOTTOM) / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 18 {(TOP + H - BOTTOM) / 2:.0f})">{escape(ylabel)}</text>')
    return out


def _legend(names):
    out = []
    for i, name in enumerate(names):
        y = TOP + 10 + i * 20
        x = W - RIGHT + 16
        c = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="{y - 9}" width="14" height="10" fill="{c}"/>')
        out.append(f'<text x="{x + 20}" y="{y}">{escape(name)}</text>')
    return out


def _yscale(values, log):
    vals = [v for v in values if v is not None and v > 0] or [1.0]
    if log:
        ticks = log_ticks(min(vals), max(vals))
        return _Scale(ticks[0], ticks[-1], True, H - BOTTOM, TOP), ticks
    ticks = nice_ticks(0, max(vals) * 1.05)
    return _Scale(0, ticks[-1], False, H - BOTTOM, TOP), ticks


def line_chart(title, xs, series, xlabel, ylabel, log_y=False):
    """series: [(name, [y or None per x])]; xs are categories (evenly spaced, labelled)."""
    yscale, ticks = _yscale([v for _, ys in series for v in ys], log_y)
    out = _frame(title, ylabel, xlabel, yscale, ticks, _num)
    x0, x1 = LEFT + 30, W - RIGHT - 30
    px = [x0 + (x1 - x0) * (i / (len(xs) - 1) if len(xs) > 1 else 0.5) for i in range(len(xs))]
    for x, label in zip(px, xs):
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">'
                   f'{escape(str(label))}</text>')
    for i, (name, ys) in enumerate(series):
        c = PALETTE[i % len(PALETTE)]
        pts = [(x, yscale(y)) for x, y in zip(px, ys) if y is not None and (y > 0 or not log_y)]
        if len(pts) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{c}"/>')
    out += _legend([n for n, _ in series])
    out.append("</svg>")
    return "\n".join(out) + "\n"


def fmt_us(v):
    """Tick label for a latency in µs: 100 µs, 1 ms, 10 s."""
    if v >= 1e6:
        return f"{v / 1e6:g} s"
    if v >= 1e3:
        return f"{v / 1e3:g} ms"
    return f"{v:g} µs"


def bar_chart(title, groups, series, ylabel, log_y=True, unit_fmt=None, ref=None):
    """groups: category labels (e.g. p50, p99); series: [(name, [value per group])];
    ref: optional (value, label) drawn as a dashed horizontal line (a target)."""
    fmt = unit_fmt or _num
    yscale, ticks = _yscale([v for _, vs in series for v in vs], log_y)
    out = _frame(title, ylabel, "", yscale, ticks, fmt)
    x0, x1 = LEFT + 10, W - RIGHT - 10
    gw = (x1 - x0) / max(len(groups), 1)
    bw = gw * 0.8 / max(len(series), 1)
    base = H - BOTTOM
    for g, label in enumerate(groups):
        gx = x0 + g * gw
        out.append(f'<text x="{gx + gw / 2:.1f}" y="{base + 18}" text-anchor="middle">'
                   f'{escape(label)}</text>')
        for i, (_, vs) in enumerate(series):
            v = vs[g]
            if v is None or (log_y and v <= 0):
                continue
            y = yscale(v)
            x = gx + gw * 0.1 + i * bw
            c = PALETTE[i % len(PALETTE)]
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" '
                       f'height="{max(base - y, 0.5):.1f}" fill="{c}"/>')
    if ref is not None and yscale.lo <= ref[0] <= yscale.hi:
        y = yscale(ref[0])
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" '
                   f'stroke="#000" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{LEFT + 4}" y="{y - 5:.1f}" text-anchor="start">'
                   f'{escape(ref[1])}</text>')
    out += _legend([n for n, _ in series])
    out.append("</svg>")
    return "\n".join(out) + "\n"
