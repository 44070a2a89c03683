"""A small document model and its two writers, Markdown and HTML.

The notes are built once as blocks (headings, paragraphs, lists, tables, figures) of styled
text spans, then written out by :func:`to_markdown` and :func:`to_html`.  Both twins therefore
carry the same content, and escaping happens in exactly one place per format: every string
that came from a user (stem names, file paths) is a span's text, and spans are always escaped.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Union

#: Span styles: plain text, bold, code (names), and the provenance tags.
STYLES = ("", "strong", "code", "em", "tag-ai", "tag-hybrid", "tag-manual", "tag-untouched")


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text in one style (see :data:`STYLES`); with ``href`` (``http``/``https`` only) a link."""

    text: str
    style: str = ""
    href: str = ""

    @property
    def link(self) -> str:
        """The link target if it is a web address (anything else is shown as plain text)."""
        return self.href if self.href.startswith(("http://", "https://")) else ""


Inline = tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    content: Inline


@dataclass(frozen=True, slots=True)
class Paragraph:
    content: Inline


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A table; ``numeric`` columns are right-aligned."""

    header: tuple[str, ...]
    rows: tuple[tuple[Inline, ...], ...]
    numeric: tuple[bool, ...] = ()


@dataclass(frozen=True, slots=True)
class Figure:
    """An inline SVG chart.  Markdown has no inline images that survive every viewer, so it
    gets ``fallback`` blocks instead (a table of the same numbers, or a sentence)."""

    svg: str
    caption: str
    fallback: tuple["Block", ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    """A group of blocks; in HTML a ``<section>`` with a class for styling."""

    css_class: str
    blocks: tuple["Block", ...]


@dataclass(frozen=True, slots=True)
class Listen:
    """A level-matched before/after player: two audio files of the same length and loudness.

    In HTML two ``<audio>`` elements and an A/B button that swaps them at the same playing position
    (the page's only script, present only with this block); in Markdown, links to both files.
    """

    before_url: str
    after_url: str
    caption: str


Block = Union[Heading, Paragraph, Bullets, Table, Figure, Section, Listen]


def text(*parts: str | Span) -> Inline:
    """Inline content from plain strings and spans."""
    return tuple(p if isinstance(p, Span) else Span(p) for p in parts)


# --- Markdown -----------------------------------------------------------------------------------

#: CommonMark punctuation that can start markup anywhere in a line.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|&~])")
#: An underscore only opens or closes emphasis next to a non-alphanumeric character, so
#: ``Bass_DI`` stays readable while ``_x_`` is escaped.
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
#: Characters that start a block (heading, list, quote) when they open a line.
_MD_LINE_START = re.compile(r"^([#+\-=>])")
_MD_ORDERED_START = re.compile(r"^(\d+)([.)])")


def md_escape(value: str) -> str:
    """Escape text so CommonMark/GFM shows it literally (no emphasis, HTML, links or cells)."""
    value = re.sub(r"\s+", " ", value)  # a newline would end a list item or a table row
    value = _MD_SPECIAL.sub(r"\\\1", value)
    return _MD_UNDERSCORE.sub(r"\\_", value)


def _md_code(value: str, cell: bool = False) -> str:
    """A code span whose fence is longer than any backtick run inside (CommonMark 6.1).

    In a table ``cell``, ``|`` is escaped: GFM splits cells on it even inside code spans.
    """
    value = re.sub(r"\s+", " ", value)
    if cell:
        value = value.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _md_line(content: Inline) -> str:
    """Inline content that opens a line: a leading ``-`` or ``1.`` would start a list."""
    line = _MD_LINE_START.sub(r"\\\1", _md_inline(content))
    return _MD_ORDERED_START.sub(r"\1\\\2", line)


def _md_wrap(value: str, marker: str) -> str:
    """Emphasis around the text, with its outer spaces moved outside the markers: ``** x**`` is
    not emphasis in CommonMark (a closing marker must follow a non-space)."""
    core = value.strip()
    if not core:
        return md_escape(value)
    lead, trail = value[: len(value) - len(value.lstrip())], value[len(value.rstrip()):]
    return f"{md_escape(lead)}{marker}{md_escape(core)}{marker}{md_escape(trail)}"


def _md_inline(content: Inline, cell: bool = False) -> str:
    out = []
    for span in content:
        if span.link:
            target = re.sub(r"[\s<>()|\\]", lambda m: "%{:02X}".format(ord(m.group())), span.link)
            out.append(f"[{md_escape(span.text)}](<{target}>)")
        elif span.style == "code":
            out.append(_md_code(span.text, cell))
        elif span.style == "strong" or span.style.startswith("tag-"):
            out.append(_md_wrap(span.text, "**"))
        elif span.style == "em":
            out.append(_md_wrap(span.text, "*"))
        else:
            out.append(md_escape(span.text))
    return "".join(out)


def _md_table(table: Table) -> list[str]:
    aligns = [("---:" if table.numeric[k] else "---") if k < len(table.numeric) else "---"
              for k in range(len(table.header))]
    lines = ["| " + " | ".join(md_escape(h) for h in table.header) + " |", "| " + " | ".join(aligns) + " |"]
    lines += ["| " + " | ".join(_md_inline(cell, cell=True) for cell in row) + " |" for row in table.rows]
    return lines


def _md_block(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + _md_line(block.content), ""]
    if isinstance(block, Paragraph):
        return [_md_line(block.content), ""]
    if isinstance(block, Bullets):
        return ["- " + _md_line(item) for item in block.items] + [""]
    if isinstance(block, Table):
        return _md_table(block) + [""]
    if isinstance(block, Figure):
        return [line for b in block.fallback for line in _md_block(b)]
    if isinstance(block, Listen):
        return [f"[before (pre-AI)]({_md_url(block.before_url)}) · [after (AI pass)]({_md_url(block.after_url)})"
                f" — {md_escape(block.caption)}", ""]
    return [line for b in block.blocks for line in _md_block(b)]


def _md_url(url: str) -> str:
    """A link destination that survives spaces and brackets (CommonMark 6.3: ``<...>``)."""
    return "<" + url.replace("<", "%3C").replace(">", "%3E") + ">"


def to_markdown(blocks: list[Block]) -> str:
    """The blocks as GitHub-flavoured Markdown, ending in exactly one newline."""
    lines = [line.rstrip() for block in blocks for line in _md_block(block)]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- HTML ---------------------------------------------------------------------------------------

#: Dark text on light backgrounds throughout; tags differ in hue and also in border style, so
#: they stay distinguishable in greyscale print.
CSS = """
body{margin:0;background:#fbfbf8;color:#1b1b1b;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:62rem;margin:0 auto;padding:1.5rem 1.25rem 3rem}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.25rem;margin:2rem 0 .6rem;border-bottom:2px solid #d8d8d0}
h3{font-size:1.05rem;margin:1.2rem 0 .3rem}
p,ul{margin:.3rem 0 .7rem}li{margin:.15rem 0}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eeeee8;padding:0 .25em}
code{border-radius:3px}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:14px}
th,td{border:1px solid #cfcfc6;padding:.25rem .55rem;vertical-align:top;text-align:left}
th{background:#ecece4}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.tag{display:inline-block;font-size:12px;font-weight:600;padding:0 .5em;border-radius:9px;border:1px solid}
.tag-ai{background:#dfeaf7;color:#123a66;border-color:#5b84b8}
.tag-hybrid{background:#ece2f5;color:#3f1f5c;border-color:#8a66ad;border-style:dashed}
.tag-manual{background:#f8ebd2;color:#5a3a00;border-color:#b48a3c;border-style:double;border-width:3px}
.tag-untouched{background:#ededea;color:#3a3a3a;border-color:#9a9a92;border-style:dotted}
section.track{border-left:3px solid #d0d0c8;padding-left:.9rem;margin:1rem 0}
figure{margin:1rem 0 1.6rem}figcaption{font-size:13px;color:#3d3d3d;margin-top:.3rem}
figure svg{max-width:100%;height:auto;border:1px solid #dcdcd4;background:#fff}
.listen{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center}.listen audio{width:min(100%,24rem)}
.listen button{font:inherit;padding:.3rem .9rem;border:1px solid #5b84b8;border-radius:4px;background:#dfeaf7}
"""

#: The A/B switch of :class:`Listen`: one element plays at a time, the other takes over at the same position.
_LISTEN_JS = """
document.querySelectorAll('.listen').forEach(function(box){
 var a=box.querySelectorAll('audio'),b=box.querySelector('button'),s=box.querySelector('.state');
 b.addEventListener('click',function(){
  var on=a[0].paused&&!a[1].paused?1:0,off=1-on,t=a[on].currentTime,playing=!a[on].paused;
  a[on].pause();a[off].currentTime=t;if(playing){a[off].play();}
  s.textContent=off?'after (AI pass)':'before (pre-AI)';});
 a.forEach(function(x,k){x.addEventListener('play',function(){a[1-k].pause();
  s.textContent=k?'after (AI pass)':'before (pre-AI)';});});});
"""


def _html_inline(content: Inline) -> str:
    out = []
    for span in content:
        value = html.escape(span.text, quote=True)
        if span.link:
            out.append(f'<a href="{html.escape(span.link, quote=True)}">{value}</a>')
        elif span.style == "code":
            out.append(f"<code>{value}</code>")
        elif span.style == "strong":
            out.append(f"<strong>{value}</strong>")
        elif span.style == "em":
            out.append(f"<em>{value}</em>")
        elif span.style.startswith("tag-"):
            out.append(f'<span class="tag {span.style}">{value}</span>')
        else:
            out.append(value)
    return "".join(out)


def _html_table(table: Table) -> list[str]:
    def cls(k: int) -> str:
        return ' class="num"' if k < len(table.numeric) and table.numeric[k] else ""
    lines = ["<table>", "<thead><tr>" + "".join(f"<th{cls(k)}>{html.escape(h)}</th>"
                                                for k, h in enumerate(table.header)) + "</tr></thead>", "<tbody>"]
    for row in table.rows:
        lines.append("<tr>" + "".join(f"<td{cls(k)}>{_html_inline(cell)}</td>" for k, cell in enumerate(row)) + "</tr>")
    return lines + ["</tbody>", "</table>"]


def _html_block(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return [f"<h{block.level}>{_html_inline(block.content)}</h{block.level}>"]
    if isinstance(block, Paragraph):
        return [f"<p>{_html_inline(block.content)}</p>"]
    if isinstance(block, Bullets):
        return ["<ul>"] + [f"<li>{_html_inline(item)}</li>" for item in block.items] + ["</ul>"]
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Figure):
        return ["<figure>", block.svg, f"<figcaption>{html.escape(block.caption)}</figcaption>", "</figure>"]
    if isinstance(block, Listen):
        before, after = html.escape(block.before_url, quote=True), html.escape(block.after_url, quote=True)
        return ['<figure class="listen-box"><div class="listen">',
                f'<audio controls preload="none" src="{before}" aria-label="before (pre-AI)"></audio>',
                f'<audio controls preload="none" src="{after}" aria-label="after (AI pass), level-matched"></audio>',
                '<button type="button">A/B</button> <span class="state" aria-live="polite">before (pre-AI)</span>',
                f"</div><figcaption>{html.escape(block.caption)}</figcaption></figure>"]
    return ([f'<section class="{html.escape(block.css_class, quote=True)}">']
            + [line for b in block.blocks for line in _html_block(b)] + ["</section>"])


def _has_listen(blocks) -> bool:
    return any(isinstance(b, Listen) or (isinstance(b, Section) and _has_listen(b.blocks)) for b in blocks)


def to_html(blocks: list[Block], title: str) -> str:
    """The blocks as one self-contained HTML5 page: inline CSS and SVG; the only script is that of a
    :class:`Listen` block (the rendered mixes beside the notes), links only where a span has one (the
    review page's address) or in the player."""
    body = [line for block in blocks for line in _html_block(block)]
    if _has_listen(blocks):
        body.append(f"<script>{_LISTEN_JS.strip()}</script>")
    head = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>", f"<style>{CSS.strip()}</style>", "</head>", "<body>", "<main>"]
    return "\n".join(head + body + ["</main>", "</body>", "</html>"]) + "\n"
