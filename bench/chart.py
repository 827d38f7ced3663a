"""Draw the ratio of each benchmark workload against its baseline as an SVG bar
chart, with the target marked. Usage: chart.py results.tsv out.svg"""
import csv
import sys
from html import escape

rows = []
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        try:
            ratio = float(row["ratio"])
        except ValueError:
            continue
        try:
            target = float(row["target"])
        except ValueError:
            target = None
        rows.append((row["workload"], ratio, target, row["pass"]))

label_w, bar_w, row_h, top = 430, 360, 30, 40
scale = bar_w / max(1.2, max(r for _, r, _, _ in rows) * 1.1)
height = top + row_h * len(rows) + 30
out = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 80}" height="{height}" '
    'font-family="sans-serif" font-size="12">',
    f'<text x="10" y="22" font-size="14" font-weight="bold">tenancy: product / baseline '
    f'(higher is better; | = target)</text>',
]
for i, (name, ratio, target, verdict) in enumerate(rows):
    y = top + i * row_h
    color = {"pass": "#3a7d44", "FAIL": "#c0392b"}.get(verdict, "#7f8c8d")
    out.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{escape(name)}</text>')
    out.append(f'<rect x="{label_w}" y="{y + 5}" width="{ratio * scale:.1f}" height="18" fill="{color}"/>')
    out.append(f'<text x="{label_w + ratio * scale + 5:.1f}" y="{y + 18}">{ratio:.2f}</text>')
    if target is not None:
        x = label_w + target * scale
        out.append(f'<line x1="{x:.1f}" y1="{y + 2}" x2="{x:.1f}" y2="{y + 26}" stroke="black" stroke-width="2"/>')
one = label_w + scale
out.append(f'<line x1="{one:.1f}" y1="{top - 4}" x2="{one:.1f}" y2="{height - 26}" stroke="#999" stroke-dasharray="4"/>')
out.append(f'<text x="{one:.1f}" y="{height - 10}" text-anchor="middle" fill="#666">1.0</text>')
out.append("</svg>")
with open(sys.argv[2], "w") as f:
    f.write("\n".join(out) + "\n")
