"""Self-contained HTML reports: one file a person opens in any browser, with every figure embedded
(PNG data URIs), its style inline and nothing fetched from a network.

The commands' markdown summaries (a subset: headings, paragraphs, lists, pipe tables, **bold**,
`code`) become the page's text. A small inline script checks, once the page has loaded, that every
image decoded, says so under any that did not, and records the count in ``body[data-images]``.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from pathlib import Path

from vaecollapse.core.fileio import read_regular_file, write_text_atomic

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; margin: 0.5em 0; border: 1px solid #eee; }
code, pre { background: #f5f5f5; padding: 0 0.2em; }
pre { padding: 0.6em; overflow-x: auto; }
.broken { color: #b00; font-weight: bold; }
""".strip()

IMAGE_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  broken.forEach(function (i) {
    var note = document.createElement("p");
    note.className = "broken";
    note.textContent = "This figure could not be shown: " + i.alt;
    i.parentNode.insertBefore(note, i.nextSibling);
  });
  document.body.setAttribute("data-images", broken.length ? "broken " + broken.length
                                                           : "ok " + images.length);
});
""".strip()


def html_document(title: str, body: str) -> str:
    """A whole page around ``body`` (HTML), with the style and the image check inline."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n"
        f"{body}\n<script>\n{IMAGE_CHECK}\n</script>\n</body>\n</html>\n"
    )


def image_html(path: str | Path, root: str | Path, alt: str | None = None) -> str:
    """A PNG file inside ``root`` (never through a link) as an ``<img>`` holding the image."""
    path = Path(path)
    encoded = base64.b64encode(read_regular_file(path, root)).decode("ascii")
    text = html.escape(alt or path.stem, quote=True)
    return f'<figure><img src="data:image/png;base64,{encoded}" alt="{text}"></figure>'


def markdown_html(text: str) -> str:
    """The markdown the commands write, as HTML: ``#`` headings, paragraphs, ``-`` lists, pipe
    tables (their ``|---|`` rule dropped), fenced code blocks, ``**bold**`` and ``code``;
    everything else escaped."""
    out, paragraph, items, table = [], [], [], []

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if table:
            out.append(_table(table))
            table.clear()

    code: list[str] | None = None  # the lines of an open ``` block
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if code is None:
                flush()
                code = []
            else:
                out.append(f"<pre>{html.escape(chr(10).join(code))}</pre>")
                code = None
            continue
        if code is not None:
            code.append(line)
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if not stripped:
            flush()
        elif heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped.startswith("|"):
            if paragraph or items:
                flush()
            table.append(stripped)
        elif stripped.startswith(("- ", "* ")):
            if paragraph or table:
                flush()
            items.append(stripped[2:])
        elif items and line.startswith("  "):
            items[-1] += " " + stripped  # a list item's continued line
        else:
            if table:
                flush()
            paragraph.append(stripped)
    flush()
    return "\n".join(out)


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _table(rows: list[str]) -> str:
    body = [r for r in rows if not re.fullmatch(r"\|?[\s:|-]+\|?", r)]
    if not body:
        return ""
    head, *rest = body
    cells = "".join(f"<th>{_inline(c)}</th>" for c in _cells(head))
    lines = [f"<table><tr>{cells}</tr>"]
    for row in rest:
        lines.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(row)) + "</tr>")
    return "".join(lines) + "</table>"


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def write_report(
    path: str | Path, title: str, markdown: str, figures: Iterable[str | Path] = ()
) -> Path:
    """``report.html`` from a command's markdown summary and its figures (PNG files in the
    report's folder)."""
    path = Path(path)
    images = [image_html(f, path.parent) for f in figures]
    body = markdown_html(markdown) + "\n" + "\n".join(images)
    write_text_atomic(path, html_document(title, body))
    return path
