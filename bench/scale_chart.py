"""Draw cost against size, one small panel per series of the scale run, as an
SVG (no plotting library needed). Usage: scale_chart.py points.tsv out.svg

A flat line is the goal: the cost of one more tenant (or schema, or client)
stays what it was at the smallest size."""
import csv
import sys
from collections import OrderedDict
from html import escape

series = OrderedDict()
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        series.setdefault(row["series"], []).append((float(row["size"]), float(row["value"])))

panel_w, panel_h, pad = 380, 170, 46
cols = 2
rows = (len(series) + cols - 1) // cols
out = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * (panel_w + pad) + pad}" '
    f'height="{rows * (panel_h + pad + 20) + 40}" font-family="sans-serif" font-size="11">',
    '<text x="10" y="22" font-size="14" font-weight="bold">tenancy at scale: cost against size '
    '(flat is the goal)</text>',
]
for k, (name, points) in enumerate(series.items()):
    x0 = pad + (k % cols) * (panel_w + pad)
    y0 = 50 + (k // cols) * (panel_h + pad + 20)
    points.sort()
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    xmax, ymax = max(xs) or 1, (max(ys) or 1) * 1.2
    out.append(f'<text x="{x0}" y="{y0 - 6}" font-weight="bold">{escape(name)}</text>')
    out.append(f'<rect x="{x0}" y="{y0}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#999"/>')
    px = lambda x: x0 + panel_w * x / xmax
    py = lambda y: y0 + panel_h - panel_h * y / ymax
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(points))
    out.append(f'<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for x, y in points:
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="#1f77b4"/>')
    out.append(f'<text x="{x0 - 4}" y="{y0 + 10}" text-anchor="end">{ymax:.3g}</text>')
    out.append(f'<text x="{x0 - 4}" y="{y0 + panel_h}" text-anchor="end">0</text>')
    out.append(f'<text x="{x0 + panel_w}" y="{y0 + panel_h + 14}" text-anchor="end">{xmax:,.0f}</text>')
    out.append(f'<text x="{x0}" y="{y0 + panel_h + 14}">0</text>')
out.append("</svg>")
with open(sys.argv[2], "w") as f:
    f.write("\n".join(out) + "\n")
