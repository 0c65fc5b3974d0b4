"""The dependency DAG drawn, for `jobauto graph` and the HTML report: a `Picture` (collapse.py
made it) written as graphviz DOT (`to_dot`) or a mermaid flowchart (`to_mermaid`), with every
name escaped for each, and one colour per state (`PALETTE`, `BORDER`) that the report uses too.
`to_image` is the only function here that does I/O (it runs graphviz).
"""

from __future__ import annotations

import subprocess

from jobauto.core.errors import ConfigError
from jobauto.core.states import COUNT_KEYS as STATES
from jobauto.view.collapse import WORST_FIRST, Node, Picture

# Fill colours by state: the legend, the DOT and mermaid styles and the report read this one dict.
PALETTE = {
    "done": "#8fd694",      # green
    "running": "#6cc6e8",   # cyan-blue
    "ready": "#ffffff",     # white
    "waiting": "#f3e6a0",   # pale yellow
    "blocked": "#f5a142",   # orange
    "error": "#e5484d",     # red
}
BORDER = {"done": "#2f7a36", "running": "#1f6f93", "ready": "#666666", "waiting": "#8a7a2a",
          "blocked": "#a35a00", "error": "#8e1519"}
MIN_STRIPE = 0.08   # a state present in a collapsed node stays visible (1 error among 1,000 jobs)


# -- DOT -----------------------------------------------------------------------------------------
def printable(text: str) -> str:
    """Show control characters of a name (newline, tab, ...) as escapes instead of obeying them."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def dot_string(text: str) -> str:
    """A DOT double-quoted string showing text literally (graphviz reads \\N, &amp; etc. in labels)."""
    text = printable(text).replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    return f'"{text}"'


def _dot_label(n: Node) -> str:
    return "\\n".join(dot_string(t)[1:-1] for t in [n.title, *n.lines])


def _stripes(counts: dict[str, int]) -> str:
    present = [s for s in WORST_FIRST if counts.get(s)]
    total = sum(counts.values())
    raw = [max(counts[s] / total, MIN_STRIPE) for s in present]
    scale = sum(raw)
    # graphviz refuses weights adding up to more than 1: round down
    return ":".join(f"{PALETTE[s]};{int(w / scale * 1000) / 1000:.3f}" for s, w in zip(present, raw, strict=True))


def _dot_node(n: Node) -> str:
    attrs = [f'id="{n.id}"', f'class="state-{n.state}"', f"label=\"{_dot_label(n)}\"",
             f"tooltip={dot_string(n.tooltip or n.title)}"]
    if len(n.counts) > 1:
        attrs += ['style="striped"', f'fillcolor="{_stripes(n.counts)}"',
                  f'color="{BORDER[n.state]}"', "penwidth=2"]
    else:
        attrs += [f'fillcolor="{PALETTE[n.state]}"', f'color="{BORDER[n.state]}"']
        if len(n.jobs) > 1:
            attrs.append("penwidth=2")
    return f"{n.id} [{', '.join(attrs)}];"


def legend_dot() -> str:
    cells = "".join(f'<td bgcolor="{PALETTE[s]}">{s}</td>' for s in STATES)
    return ('subgraph cluster_legend {\n    label="legend"; labelloc=t; fontsize=9; color="#bbbbbb";\n'
            '    legend [shape=plaintext, style="", fontsize=9, tooltip="colours by state", '
            f'label=<<table border="0" cellborder="1" cellspacing="0" cellpadding="3"><tr>{cells}'
            "</tr></table>>];\n  }")


def to_dot(p: Picture) -> str:
    """The picture as graphviz DOT: clusters by directory, fill by state, a legend and a caption."""
    out = ["digraph jobauto {",
           f"  graph [label={dot_string(p.caption)}, labelloc=b, fontname=\"Helvetica\", "
           'fontsize=10, rankdir=TB, nodesep=0.25, ranksep=0.4];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
           "margin=\"0.08,0.04\"];",
           '  edge [color="#666666", arrowsize=0.6];']
    by_id = {n.id: n for n in p.nodes}
    for k, (name, ids) in enumerate(p.clusters.items()):
        out.append(f"  subgraph cluster_{k} {{")
        out.append(f"    label={dot_string(name)}; labelloc=t; style=rounded; color=\"#999999\"; "
                   "fontname=\"Helvetica\"; fontsize=10;")
        out.extend(f"    {_dot_node(by_id[i])}" for i in ids)
        out.append("  }")
    out.extend(f"  {_dot_node(n)}" for n in p.nodes if not n.cluster)
    out.extend(f"  {a} -> {b};" for a, b in p.edges)
    out.append("  " + legend_dot())
    out.append("}")
    return "\n".join(out) + "\n"


def to_image(dot_text: str, fmt: str) -> bytes:
    """Run graphviz `dot -T<fmt>` (svg or png) on DOT text."""
    if fmt not in ("svg", "png"):
        raise ConfigError(f"graphviz output {fmt!r} is not svg or png", flag="--format")
    try:
        r = subprocess.run(["dot", f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                           check=False)
    except FileNotFoundError:
        raise ConfigError("graphviz's `dot` is not installed (needed for svg and png): install "
                          "graphviz: apt install graphviz (or use --format dot or mermaid)",
                          flag="--format") from None
    if r.returncode != 0 or not r.stdout:
        err = r.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"graphviz `dot -T{fmt}` failed (exit {r.returncode}): "
                          + (err[-1] if err else "no output"), flag="--format")
    return r.stdout


# -- mermaid -------------------------------------------------------------------------------------
# Entity codes mermaid decodes after parsing; a backslash too, else "\\n" in a name breaks the line.
MERMAID_ESCAPE = {'"': "#34;", "#": "#35;", "&": "#38;", "<": "#60;", ">": "#62;", "\\": "#92;",
                  "`": "#96;"}


def mermaid_text(text: str) -> str:
    """Text for a quoted mermaid label: quotes, entity and HTML characters as entity codes."""
    return "".join(MERMAID_ESCAPE.get(ch, ch) for ch in printable(text))


def to_mermaid(p: Picture) -> str:
    """The picture as a mermaid flowchart (paste into a ```mermaid block on GitHub)."""
    import json
    out = ["---", f"title: {json.dumps(p.caption, ensure_ascii=False)}", "---",
           "flowchart TB", f"  %% jobauto graph: {mermaid_text(p.caption)}"]
    out.extend(f"  classDef {s} fill:{PALETTE[s]},stroke:{BORDER[s]},color:#000" for s in STATES)

    def node(n: Node) -> str:
        label = "<br/>".join(mermaid_text(t) for t in [n.title, *n.lines])
        return f'{n.id}["{label}"]:::{n.state}'

    by_id = {n.id: n for n in p.nodes}
    for k, (name, ids) in enumerate(p.clusters.items()):
        out.append(f'  subgraph c{k} ["{mermaid_text(name)}"]')
        out.extend(f"    {node(by_id[i])}" for i in ids)
        out.append("  end")
    out.extend(f"  {node(n)}" for n in p.nodes if not n.cluster)
    out.extend(f"  {a} --> {b}" for a, b in p.edges)
    out.append('  subgraph legend ["legend"]')
    out.append("    direction LR")
    out.extend(f'    legend_{s}["{s}"]:::{s}' for s in STATES)
    out.append("  end")
    return "\n".join(out) + "\n"
