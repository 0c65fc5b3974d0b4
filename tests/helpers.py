"""Helpers for building job trees the way a preparation script would."""

from __future__ import annotations

from pathlib import Path

# The two tables of the users' own examples (../shared/user-examples/job-tables.md), verbatim.
EXPERIMENTS = """\
param1,param2,JOBSCHEDULER_PRIORITY,JOBSCHEDULER_ESTIMATE_TIME,JOBSCHEDULER_DEPENDS_ON
preprocess,data1,5,0.5,
training,model1,3,2.0,preprocess
evaluation,results,1,0.3,training
"""
FAN_IN = """\
JOBSCHEDULER_JOB_ID,task,JOBSCHEDULER_DEPENDS_ON
jobA,preprocess,
jobB,load_data,
jobC,training,jobA jobB
jobD,evaluation,jobC
"""

# The marker logic of templates/: failed (with the exit code) before finished, always finished.
SCRIPT = """#!/bin/bash
{directives}[ -n "$PBS_O_WORKDIR" ] && cd "$PBS_O_WORKDIR"
cleanup() {{ rc=$?; if [ $rc -ne 0 ]; then echo $rc > qsub.failed.__id__; fi; touch qsub.finished.__id__; }}
trap cleanup EXIT
set -e
{body}
"""


def make_job(root: Path, name: str, deps: list[str] | None = None, body: str = "true",
             directive: str = "", script: str | None = None, head: str = "") -> Path:
    """Write `name` (``dir/qsub.ID``) and its dependency file under root. `head` holds
    scheduler directive lines; `script` replaces the whole script (e.g. one without markers)."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script if script is not None else SCRIPT.format(body=body, directives=head))
    ident = path.name[len("qsub."):]
    lines = ([directive] if directive else []) + list(deps or [])
    (path.parent / f"qsub.dependency.{ident}").write_text("".join(d + "\n" for d in lines))
    return path


def chain(root: Path, d: str, n: int, body: str = "true") -> list[str]:
    """A chain d/qsub.0 -> ... -> d/qsub.{n-1}; returns the job names."""
    names = []
    for i in range(n):
        make_job(root, f"{d}/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [], body)
        names.append(f"{d}/qsub.{i}")
    return names


TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def template_script(body: str, head: str = "") -> str:
    """A job script with the real marker block of templates/ (signals handled as users get)."""
    text = (TEMPLATES / "sge.sh").read_text()
    block = text[text.index("# >>> jobauto markers >>>"):text.index("# <<< jobauto markers <<<")]
    return ("#!/bin/bash\n" + head + '[ -n "$PBS_O_WORKDIR" ] && cd "$PBS_O_WORKDIR"\n' + block
            + "# <<< jobauto markers <<<\nwork() {\n" + body + "\n}\njobauto_run work\n")
