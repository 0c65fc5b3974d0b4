"""What a job script may carry (jobauto/core/scripts.py): the scheduler directives a wrapper
keeps and the interpreter that runs a script whatever its mode."""

from __future__ import annotations

import pytest

from jobauto.core.errors import TreeError
from jobauto.core.scripts import DIRECTIVES_MAX, interpreter, scheduler_directives

SCRIPT = """#!/bin/bash
#$ -S /bin/bash
#SBATCH --time=1:00:00
##SBATCH --mem=1G
#PBS -l walltime=1:00:00
#SBATCHX not a directive
  #SBATCH indented: Slurm does not read it

# a comment, then the first command
#$ -l h_rt=0:10:0
echo work
#SBATCH --ntasks=4
#PBS -q late
#$ -pe smp 4
"""


def test_directives_in_order_as_each_scheduler_reads_them() -> None:
    # Slurm and PBS stop at the first command; Grid Engine reads #$ lines anywhere
    assert scheduler_directives(SCRIPT) == [
        "#$ -S /bin/bash", "#SBATCH --time=1:00:00", "#PBS -l walltime=1:00:00",
        "#$ -l h_rt=0:10:0", "#$ -pe smp 4"]


def test_a_plain_script_has_no_directives_and_bare_prefixes_count() -> None:
    assert scheduler_directives("#!/bin/sh\necho hi\n") == []
    assert scheduler_directives("#$\n#SBATCH\tx\r\n") == ["#$", "#SBATCH\tx\r"]


def test_directives_that_cannot_travel_are_an_error_naming_the_file() -> None:
    with pytest.raises(TreeError, match="NUL") as e:
        scheduler_directives("#!/bin/sh\n#$ -N a\0b\n", "Si/qsub.0")
    assert e.value.file == "Si/qsub.0" and e.value.line == 2
    huge = "#!/bin/sh\n" + ("#SBATCH --comment=" + "x" * 1000 + "\n") * (DIRECTIVES_MAX // 1000)
    with pytest.raises(TreeError, match="more than"):
        scheduler_directives(huge, "Si/qsub.0")


@pytest.mark.parametrize(("text", "argv"), [
    ("#!/bin/bash\necho", ["/bin/bash"]),
    ("#!/usr/bin/env python3\nprint()", ["/usr/bin/env", "python3"]),
    ("#! /bin/bash -l -x\r\necho", ["/bin/bash", "-l -x"]),   # the kernel's one argument
    ("echo no shebang", ["/bin/bash"]),
    ("#!\necho", ["/bin/bash"]),
    ("#$ -S /bin/tcsh\necho", ["/bin/tcsh"]),                 # Grid Engine's shell, no #!
    ("#PBS -S /bin/zsh -j oe\necho", ["/bin/zsh"]),
    ("#$ -S host:/bin/ksh,/bin/sh\necho", ["/bin/ksh"]),
    ("#$ -S 'unclosed\necho", ["/bin/bash"]),
])
def test_interpreter_runs_a_script_whatever_its_mode(text: str, argv: list[str]) -> None:
    assert interpreter(text) == argv
