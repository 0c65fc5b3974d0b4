#!/usr/bin/env python3
"""Take the tutorial's screenshots from a real campaign (docs/tutorial.md).

    python docs/screenshots/make.py [WORKDIR]

Runs the ecalj example with slower dummy programs and one broken material, and while it runs
captures `jobauto status --watch` from a real terminal (tmux, 110x34); when it has ended, draws
`jobauto graph` and writes `jobauto report`. Terminal captures keep their colours
(`capture-pane -e`) and become PNGs through headless chromium, like the SVG and the report.
Needs tmux, graphviz and chromium (bash tests/tools.sh installs them). Writes docs/screenshots/*.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SOCK = f"jobauto-shots-{os.getpid()}"


def sh(*argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def tmux(*args: str) -> str:
    return sh("tmux", "-L", SOCK, *args).stdout


def chromium_png(url: str, out: Path, width: int, height: int) -> None:
    sh("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
       f"--window-size={width},{height}", f"--screenshot={out}", url, timeout=120)
    print(f"wrote {out}")


def terminal_png(ansi: str, out: Path, title: str) -> None:
    """A terminal capture (ANSI colours) as a PNG: rich turns it into HTML, chromium shoots it."""
    from rich.console import Console
    from rich.terminal_theme import MONOKAI
    from rich.text import Text
    con = Console(record=True, width=112, file=open(os.devnull, "w"), force_terminal=True)  # noqa: SIM115
    con.print(Text.from_ansi(ansi.rstrip("\n")))
    html = con.export_html(inline_styles=True, theme=MONOKAI, code_format=(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{{margin:0;background:#272822}}"
        "pre{{margin:0;padding:14px;color:#ddd;font:14px/1.25 'DejaVu Sans Mono',monospace}}"
        "</style></head><body><pre><code>{code}</code></pre></body></html>"))
    page = out.with_suffix(".html")
    page.write_text(html)
    lines = ansi.rstrip("\n").count("\n") + 1
    chromium_png(page.as_uri(), out, 1000, 28 + 18 * lines)
    page.unlink()
    print(f"  ({title})")


def capture(target: str, rows: int = 34) -> str:
    return tmux("capture-pane", "-e", "-p", "-t", "shot", "-S", "0", "-E", str(rows - 1))


def big_table(work: Path) -> None:
    """1,000 jobs: 200 pipelines prep -> 3 runs -> merge, two of them failing, run for real."""
    rows = ["name,JOBSCHEDULER_DEPENDS_ON"]
    for p in range(200):
        rows.append(f"p{p}-prep,")
        rows += [f"p{p}-run-{r},p{p}-prep" for r in "abc"]
        rows.append(f"p{p}-merge,p{p}-run-a p{p}-run-b p{p}-run-c")
    (work / "big.csv").write_text("\n".join(rows) + "\n")
    (work / "big.db").unlink(missing_ok=True)
    sh("jobauto", "import", "big.csv", cwd=work)
    subprocess.run(["jobauto", "run", "big.db", "--parallel", "2", "--", "sh", "-c",
                    'test "$0" != p7-run-b && test "$0" != p42-prep'], cwd=work,
                   capture_output=True, check=False)
    sh("jobauto", "graph", "big.db", "--format", "svg", "-o", "big.svg", cwd=work)
    chromium_png((work / "big.svg").as_uri(), HERE / "graph-1000.png", 900, 340)


def main() -> int:
    for tool in ("tmux", "dot", "chromium"):
        if not shutil.which(tool):
            print(f"make.py: {tool} is missing (bash tests/tools.sh installs it)", file=sys.stderr)
            return 2
    work = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="jobauto-shots-"))
    env = {**os.environ, "ECALJ_DUMMY_SLEEP": "1.5"}
    demo = subprocess.Popen(["bash", str(REPO / "examples/ecalj/run-local.sh"), str(work), "--break", "NiO"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ldir = work / "foobar"
    run = None
    for _ in range(200):
        runs = sorted(p for p in ldir.glob("2*") if (p / ".jobauto" / "state.db").exists())
        if runs:
            run = runs[-1]
            break
        time.sleep(0.1)
    assert run is not None, "the example did not start"
    try:
        tmux("new-session", "-d", "-s", "shot", "-x", "110", "-y", "34",
             f"cd {work} && jobauto status {run.relative_to(work)} --watch --interval 0.5")
        time.sleep(9)
        terminal_png(capture("shot"), HERE / "status-watch.png", "status --watch, mid-run")
        demo.wait(timeout=600)
        time.sleep(1.5)
        terminal_png(capture("shot"), HERE / "status-end.png", "status --watch, at the end")
    finally:
        subprocess.run(["tmux", "-L", SOCK, "kill-server"], capture_output=True)
        if demo.poll() is None:
            demo.terminate()
    rel = str(run.relative_to(work))
    sh("jobauto", "graph", rel, "--format", "svg", "-o", "dag.svg", cwd=work)
    chromium_png((work / "dag.svg").as_uri(), HERE / "graph.png", 1100, 700)
    sh("jobauto", "report", rel, "-o", "report.html", cwd=work)
    chromium_png((work / "report.html").as_uri(), HERE / "report.png", 1300, 2400)
    big_table(work)
    print(f"campaign kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
