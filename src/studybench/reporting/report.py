"""``studybench report``: run folders -> ``report.html`` (figures embedded) and ``report.md``
(figures in ``figures/`` beside it). A pure function of the folders it reads.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

from studybench.records import write_text
from studybench.reporting.collect import collect
from studybench.reporting.sections import (
    Section,
    findings_section,
    image_sections,
    lyrics_sections,
    protocol_section,
)


# --------------------------------------------------------------------------- rendering

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left}th{background:#f4f4f4}
td:nth-child(n+4){font-variant-numeric:tabular-nums}img{max-width:100%;height:auto;margin:.5em 0;
display:block}h1{margin-bottom:.2em}.meta{color:#666;font-size:.9em}
code{background:#f4f4f4;padding:0 .2em;overflow-wrap:anywhere}"""


def _inline(text: str) -> str:
    """Escape, then render `code` spans."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(title: str, sections: list[Section]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class='meta'>Built {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by studybench "
            f"from run folders only.</p>"]
    for s in sections:
        body.append(f"<h{s.level}>{html.escape(s.title)}</h{s.level}>")
        for kind, value in s.blocks:
            if kind == "p":
                body.append(f"<p>{_inline(value)}</p>")
            elif kind == "table":
                headers, rows = value
                head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
                cells = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
            elif kind == "details":
                summary, text = value
                body.append(f"<details><summary>{_inline(summary)}</summary><p>{_inline(text)}</p></details>")
            elif kind == "list":
                body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in value) + "</ul>")
            else:
                name, png, alt = value
                data = base64.b64encode(png).decode("ascii")
                body.append(f"<img src='data:image/png;base64,{data}' alt='{html.escape(alt)}'>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>" + html.escape(title)
            + f"</title><style>{CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n")


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|")


def render_markdown(title: str, sections: list[Section], figure_dir: str = "figures") -> tuple[str, dict[str, bytes]]:
    lines, files = [f"# {title}", ""], {}
    for s in sections:
        lines += ["#" * s.level + " " + s.title, ""]
        for kind, value in s.blocks:
            if kind == "p":
                lines += [value, ""]
            elif kind == "table":
                headers, rows = value
                lines.append("| " + " | ".join(map(_md_cell, headers)) + " |")
                lines.append("|" + "---|" * len(headers))
                lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
                lines.append("")
            elif kind == "details":
                summary, text = value
                lines += [f"<details><summary>{html.escape(summary)}</summary>", "", text, "", "</details>", ""]
            elif kind == "list":
                lines += [f"- {item}" for item in value] + [""]
            else:
                name, png, alt = value
                safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) + ".png"
                files[safe] = png
                lines += [f"![{alt}]({figure_dir}/{safe})", ""]
    return "\n".join(lines), files


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def markers(section: str = "results") -> tuple[str, str]:
    """The README markers around a generated section (``results``, or another name such as
    ``results-beyond`` for a second table made from other run folders)."""
    if not section.replace("-", "").replace("_", "").isalnum():
        from studybench.errors import StudybenchError

        raise StudybenchError(f"--readme-section {section!r}: letters, digits, - and _ only")
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


def _sections(collected) -> list[Section]:
    """Findings first, then each study's tables and figures, then the protocol."""
    findings = findings_section(collected)
    sections = [findings] if findings else []
    sections += lyrics_sections(collected) if collected.lyrics else []
    sections += image_sections(collected) if collected.images else []
    return sections + [protocol_section(collected)]


def readme_results(runs_dir: str | Path) -> str:
    """The Markdown tables (no figures) of every run under ``runs_dir``, with the commands
    that made them: the README's results section, generated rather than typed."""
    collected = collect(runs_dir)
    sections = _sections(collected)
    kept = []
    for s in sections:
        if s.level > 2:
            continue  # learning curves: figures only
        blocks = [b for b in s.blocks if b[0] != "figure"]
        kept.append(Section(s.title, 3, blocks))
    text, _ = render_markdown("", kept)
    return text.split("\n", 2)[2]  # drop the empty title line and the blank after it


def check_readme(readme: str | Path, section: str = "results") -> str:
    """The README's text, if it is a UTF-8 file with the section's markers; else a one-line error."""
    from studybench.errors import StudybenchError
    from studybench.records import read_input_text

    readme = Path(readme)
    start, end = markers(section)
    text = read_input_text(readme, "README (--readme)")
    if start not in text or end not in text:
        raise StudybenchError(f"--readme {readme}: no {start} ... {end} markers to fill")
    return text


def update_readme(readme: str | Path, runs_dir: str | Path, section: str = "results") -> None:
    """Replace the text between the README's markers of ``section`` with :func:`readme_results`."""
    readme = Path(readme)
    text = check_readme(readme, section)
    start, end = markers(section)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    option = "" if section == "results" else f" --readme-section {section}"
    generated = (f"{start}\n<!-- generated by `studybench report {runs_dir} --readme {readme.name}{option}`; "
                 f"do not edit by hand -->\n\n{readme_results(runs_dir)}\n{end}")
    write_text(readme, head + generated + tail)


def build_report(runs_dir: str | Path, out: str | Path | None = None,
                 title: str = "studybench report") -> Path:
    """Write ``report.html`` and ``report.md`` (+ ``figures/``) for every run under ``runs_dir``;
    returns the HTML path. ``out`` defaults to ``runs_dir``."""
    from studybench.errors import StudybenchError
    from studybench.records import check_out_folder

    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise StudybenchError(f"{runs_dir}: no such folder" if not runs_dir.exists() else
                              f"{runs_dir}: not a folder; give a study's --out folder")
    if out is not None:
        check_out_folder(out)
    collected = collect(runs_dir)
    if not (collected.lyrics or collected.images or collected.problems or collected.missing):
        raise StudybenchError(f"{runs_dir}: no run folders found (expected {runs_dir}/runs/<run id>/ "
                              f"or subfolders holding runs/)")
    out = Path(out) if out else runs_dir
    sections = _sections(collected)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "report.html"
    write_text(page, render_html(title, sections))
    markdown, files = render_markdown(title, sections)
    (out / "figures").mkdir(exist_ok=True)
    for name, png in files.items():
        tmp = out / "figures" / f".{name}.tmp"
        tmp.write_bytes(png)
        tmp.replace(out / "figures" / name)
    write_text(out / "report.md", markdown)
    return page
