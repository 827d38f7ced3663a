"""Draw per-tenant usage (tenancy.tenant_stats of a benchmark run) as an SVG
bar chart: the tenants with the most time, their share of all the time, and
their statements. Usage: usage_chart.py stats.tsv out.svg
(stats.tsv: identifier, calls, total_time in ms; tab-separated, no header)"""
import sys
from html import escape

rows, untenanted = [], (0, 0.0)
with open(sys.argv[1]) as f:
    for line in f:
        identifier, calls, total = line.rstrip("\n").split("\t")
        if identifier:
            rows.append((identifier, int(calls), float(total)))
        else:
            untenanted = (int(calls), float(total))
rows.sort(key=lambda r: -r[2])
everything = sum(total for _, _, total in rows) or 1
shown = rows[:15]
label_w, bar_w, row_h, top = 130, 420, 24, 46
scale = bar_w / max(total for _, _, total in shown)
height = top + row_h * len(shown) + 34
out = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 230}" height="{height}" '
    'font-family="sans-serif" font-size="12">',
    '<text x="10" y="20" font-size="14" font-weight="bold">tenancy.tenant_stats after a skewed load '
    '(1,000 tenants, Zipf 1.2)</text>',
    f'<text x="10" y="36" fill="#555">the {len(shown)} tenants with the most time of {len(rows)}; '
    'bar: total_time; right: share of all time, statements</text>',
]
for i, (name, calls, total) in enumerate(shown):
    y = top + i * row_h
    out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>')
    out.append(f'<rect x="{label_w}" y="{y + 3}" width="{total * scale:.1f}" height="16" fill="#2e6f9e"/>')
    out.append(f'<text x="{label_w + total * scale + 6:.1f}" y="{y + 15}">'
               f'{total:,.0f} ms · {100 * total / everything:.1f} % · {calls:,} statements</text>')
out.append(f'<text x="10" y="{height - 10}" fill="#555">all tenants: {everything:,.0f} ms, '
           f'{sum(c for _, c, _ in rows):,} statements; without a tenant (each request\'s BEGIN and '
           f'set_tenant): {untenanted[1]:,.0f} ms, {untenanted[0]:,} statements</text>')
out.append("</svg>")
with open(sys.argv[2], "w") as f:
    f.write("\n".join(out) + "\n")
