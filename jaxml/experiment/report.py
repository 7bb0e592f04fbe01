"""The reproduction report over several runs: ``report.md`` and a self-contained ``report.html``
(figures embedded as base64), per paper: claims with measured numbers and verdicts, figures,
tables, runtime and the data used."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

from jaxml.experiment.results import write_atomic

__all__ = ["RunRecord", "write_report"]


class RunRecord(dict):
    """``{"slug", "title", "out_dir", "error"}`` of one run in a reproduction."""


def _load(out_dir: Path) -> dict[str, Any]:
    def rd(name: str, default: Any) -> Any:
        p = out_dir / name
        return json.loads(p.read_text()) if p.exists() else default

    return {
        "claims": rd("claims.json", {"claims": []})["claims"],
        "metrics": rd("metrics.json", {}),
        "run": rd("run.json", {}),
        "figures": sorted(out_dir.glob("*.png")),
        "tables": (out_dir / "tables.md").read_text() if (out_dir / "tables.md").exists() else "",
    }


def _fmt(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def write_report(records: list[dict[str, Any]], out: str | os.PathLike, *, mode: str) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out`` for the given run records.

    Returns:
      The two paths.
    """
    out = Path(out)
    md = [f"# jaxml reproduction report ({mode} mode)", ""]
    summary = ["| paper | claims holding | runtime (s) | status |", "|---|---|---|---|"]
    sections_md: list[str] = []
    sections_html: list[str] = []
    for rec in records:
        slug, title, err = rec["slug"], rec.get("title", ""), rec.get("error")
        if err:
            summary.append(f"| {slug} | - | - | error: {err} |")
            sections_md += [f"## {slug}: {title}", "", f"**Error:** {err}", ""]
            sections_html.append(f"<h2>{html.escape(slug)}: {html.escape(title)}</h2><p><b>Error:</b> {html.escape(err)}</p>")
            continue
        d = Path(rec["out_dir"])
        r = _load(d)
        claims = r["claims"]
        held = sum(bool(c["holds"]) for c in claims)
        runtime = r["run"].get("runtime_s")
        summary.append(f"| {slug} | {held}/{len(claims)} | {_fmt(runtime)} | ok |")
        s = [f"## {slug}: {title}", "", f"Results folder: `{d}`; runtime {_fmt(runtime)} s; "
             f"backend {r['run'].get('backend', '?')}.", ""]
        s += ["| claim | statement | measured | threshold | verdict |", "|---|---|---|---|---|"]
        h = [f"<h2>{html.escape(slug)}: {html.escape(title)}</h2>",
             f"<p>Runtime {_fmt(runtime)} s; backend {html.escape(str(r['run'].get('backend', '?')))}.</p>",
             "<table><tr><th>claim</th><th>statement</th><th>measured</th><th>threshold</th><th>verdict</th></tr>"]
        for c in claims:
            verdict = "holds" if c["holds"] else "does not hold"
            s.append(f"| {c['name']} | {c['statement']} | {_fmt(c['measured'])} | {c.get('op', '>=')} "
                     f"{_fmt(c['threshold'])} | {verdict} |")
            h.append(f"<tr><td>{html.escape(c['name'])}</td><td>{html.escape(c['statement'])}</td>"
                     f"<td>{_fmt(c['measured'])}</td><td>{html.escape(c.get('op', '>='))} {_fmt(c['threshold'])}</td>"
                     f"<td class='{'ok' if c['holds'] else 'bad'}'>{verdict}</td></tr>")
        h.append("</table>")
        data = r["run"].get("data") or []
        if data:
            s += ["", "Data: " + "; ".join(data)]
            h.append("<p>Data: " + html.escape("; ".join(data)) + "</p>")
        notes = r["run"].get("notes")
        if notes:
            s += ["", notes]
            h.append(f"<p>{html.escape(notes)}</p>")
        if r["tables"]:
            s += ["", r["tables"]]
            h.append(f"<pre>{html.escape(r['tables'])}</pre>")
        for fig in r["figures"]:
            rel = os.path.relpath(fig, out)
            s += ["", f"![{fig.stem}]({rel})"]
            b64 = base64.b64encode(fig.read_bytes()).decode()
            h.append(f"<figure><img src='data:image/png;base64,{b64}' alt='{html.escape(fig.stem)}'>"
                     f"<figcaption>{html.escape(fig.stem)}</figcaption></figure>")
        sections_md += s + [""]
        sections_html.append("\n".join(h))
    md += summary + [""] + sections_md
    md_path, html_path = out / "report.md", out / "report.html"
    write_atomic(md_path, "\n".join(md) + "\n")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px}.ok{color:green}.bad{color:#b00}img{max-width:100%}")
    summary_html = "<table><tr><th>paper</th><th>claims holding</th><th>runtime (s)</th><th>status</th></tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in row.strip("|").split("|")) + "</tr>"
        for row in summary[2:]) + "</table>"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>jaxml report</title><style>{style}</style>"
            f"</head><body><h1>jaxml reproduction report ({html.escape(mode)} mode)</h1>{summary_html}"
            + "\n".join(sections_html) + "</body></html>\n")
    write_atomic(html_path, page)
    return md_path, html_path
