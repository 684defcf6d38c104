"""A report document rendered as Markdown (images linked) and as one self-contained HTML page
(images embedded, the explorer's JavaScript inlined once), readable from a phone's 390 px to a
wide screen: tables scroll sideways inside their own box, figures shrink to the page.

A document is a list of blocks: ("h1"|"h2"|"p"|"pre"|"warn", text), ("ul", items),
("table", header, rows), ("img", path, caption), ("verdict", Verdict) and ("explorer",
Fragment, caption; HTML only, the Markdown says where to find it). Both renderers walk the
same list.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from irrepscope.tables import markdown_table

Block = tuple[Any, ...]

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1400px;margin:auto;padding:0.8em;
line-height:1.45;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
h1,p,li,figcaption{overflow-wrap:anywhere}
.table-box{overflow-x:auto;max-width:100%;margin:0.5em 0}
table{border-collapse:collapse;font-size:0.88em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0}
img{max-width:100%;height:auto}pre{background:#f5f5f5;padding:0.5em;overflow:auto}
figure{margin:1em 0}figcaption{color:#555;font-size:0.9em}
.warning{background:#fdecea;border:2px solid #c62828;padding:0.6em}
.verdict{background:#eef5fb;border:2px solid #1f77b4;border-radius:6px;padding:0.2em 1em 0.6em}
.verdict.bad{background:#fdecea;border-color:#c62828}
.verdict h2{margin-top:0.6em}.verdict li{margin:0.25em 0}.verdict .unknown{color:#555}
.explorer-controls{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-end}
.explorer-panels{display:flex;flex-wrap:wrap;gap:4px}
@media (max-width:600px){body{padding:0.4em;font-size:15px}td,th{padding:2px 5px}}
"""


def render_markdown(doc: list[Block], base: Path) -> str:
    """Markdown text of a document; images are linked relative to ``base``."""
    parts = []
    for block in doc:
        kind = block[0]
        if kind in ("h1", "h2"):
            parts.append(("# " if kind == "h1" else "## ") + block[1])
        elif kind == "p":
            parts.append(block[1])
        elif kind == "warn":
            parts.append(f"> **Warning:** {block[1]}")
        elif kind == "pre":
            parts.append("```\n" + block[1].rstrip() + "\n```")
        elif kind == "table":
            parts.append(markdown_table(block[1], block[2]))
        elif kind == "ul":
            parts.append("\n".join(f"- {item}" for item in block[1]) or "- none")
        elif kind == "img":
            rel = Path(os.path.relpath(Path(block[1]).resolve(), base.resolve()))
            parts.append(f"![{block[2]}]({rel.as_posix()})\n\n*{block[2]}*")
        elif kind == "verdict":
            parts.append(_verdict_markdown(block[1]))
        elif kind == "explorer":
            parts.append(f"*{block[2]}: interactive, in report.html.*")
    return "\n\n".join(parts) + "\n"


def _verdict_markdown(verdict: Any, depth: int = 0) -> str:
    indent = "  " * depth
    lines = ([] if depth else ["## Verdict", ""]) + [f"{indent}- {s}" for s in verdict.sentences]
    if verdict.unknown:
        lines += [f"{indent}- Not known:"] + [f"{indent}  - {s}" for s in verdict.unknown]
    for name, part in verdict.parts:
        lines += [f"{indent}- **{name}**", _verdict_markdown(part, depth + 1)]
    if not depth:
        for command in _commands(verdict):
            lines += ["", "```", command, "```"]
    return "\n".join(lines)


def _commands(verdict: Any) -> list[str]:
    """The verdict's commands and its parts', in order."""
    return [*verdict.commands, *(c for _, part in verdict.parts for c in _commands(part))]


def _verdict_items(verdict: Any) -> str:
    items = "".join(f"<li>{html.escape(s)}</li>" for s in verdict.sentences)
    if verdict.unknown:
        unknown = "".join(f"<li>{html.escape(s)}</li>" for s in verdict.unknown)
        items += f'<li class="unknown">Not known:<ul>{unknown}</ul></li>'
    for name, part in verdict.parts:
        items += f"<li><strong>{html.escape(name)}</strong><ul>{_verdict_items(part)}</ul></li>"
    return items


def _verdict_html(verdict: Any) -> str:
    commands = "".join(f"<pre>{html.escape(c)}</pre>" for c in _commands(verdict))
    return (f'<section class="verdict{" bad" if verdict.warning else ""}" id="verdict">'
            f"<h2>Verdict</h2><ul>{_verdict_items(verdict)}</ul>{commands}</section>")


def _table_html(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f'<div class="table-box"><table><thead><tr>{head}</tr></thead><tbody>{body}'
            f"</tbody></table></div>")


def _block_html(block: Block) -> str:
    kind = block[0]
    if kind in ("h1", "h2"):
        return f"<{kind}>{html.escape(block[1])}</{kind}>"
    if kind == "p":
        return f"<p>{html.escape(block[1])}</p>"
    if kind == "warn":
        return f'<p class="warning"><strong>Warning:</strong> {html.escape(block[1])}</p>'
    if kind == "pre":
        return f"<pre>{html.escape(block[1])}</pre>"
    if kind == "ul":
        items = "".join(f"<li>{html.escape(i)}</li>" for i in block[1]) or "<li>none</li>"
        return f"<ul>{items}</ul>"
    if kind == "table":
        return _table_html(block[1], block[2])
    if kind == "img":
        data = base64.b64encode(Path(block[1]).read_bytes()).decode("ascii")
        caption = html.escape(block[2])
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>")
    if kind == "verdict":
        return _verdict_html(block[1])
    if kind == "explorer":
        return (f'<figure class="explorer-figure">{block[1].html}<figcaption>'
                f"{html.escape(block[2])}</figcaption></figure>{block[1].script}")
    raise ValueError(f"unknown report block {kind!r}")


def render_html(doc: list[Block], title: str) -> str:
    """A self-contained HTML page of a document."""
    head = ""
    if any(block[0] == "explorer" for block in doc):
        from irrepscope.analysis.explorer import resources_html

        head = resources_html()
    body = "\n".join(_block_html(block) for block in doc)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style>{head}</head><body>\n"
            f"{body}\n</body></html>\n")
