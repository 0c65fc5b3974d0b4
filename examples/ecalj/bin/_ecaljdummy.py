"""Shared helpers of the dummy ecalj programs in this directory (python3 stdlib only).

The numbers are fake: deterministic functions of the structure, loosely shaped like published
LDA and QSGW band gaps so that the demo output looks familiar. Nothing here is physics.
"""

import hashlib
import math
import os
import re
import sys
import time

SLEEP_ENV = "ECALJ_DUMMY_SLEEP"
DEFAULT_SLEEP_S = 0.2

# Lowercase-insensitive lookup of the atomic number, for the fake total energy.
ELEMENTS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
    "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb "
    "Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi"
).split()
ATOMIC_NUMBER = {symbol: z for z, symbol in enumerate(ELEMENTS, start=1)}

# (LDA gap, QSGW gap) in eV by formula, shaped like published values.
REFERENCE_GAPS = {
    "Si": (0.47, 1.23),
    "GaAs": (0.30, 1.93),
    "MgO": (4.70, 8.90),
    "NiO": (0.45, 4.80),
    "ZnO": (0.75, 3.87),
    "Cu": (0.0, 0.0),
}

# Each QSGW iteration removes this fraction of the remaining distance to the converged gap.
CONVERGENCE = 0.65


class InputError(Exception):
    """An input file is missing or malformed."""


def fail(prog, message, code=1):
    """Print an error the way ecalj tools do and exit non-zero."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.exit(code)


def require(prog, path, hint):
    """Exit with a clear message when an input file of this step is missing."""
    if not os.path.isfile(path):
        fail(prog, f"{path} not found in {os.getcwd()} ({hint})")


def nap(prog):
    """Pretend to compute: sleep ECALJ_DUMMY_SLEEP seconds (default 0.2)."""
    raw = os.environ.get(SLEEP_ENV, "")
    try:
        seconds = float(raw) if raw else DEFAULT_SLEEP_S
    except ValueError:
        fail(prog, f"{SLEEP_ENV}={raw!r} is not a number of seconds", code=2)
    if seconds < 0:
        fail(prog, f"{SLEEP_ENV}={raw!r} is negative", code=2)
    time.sleep(seconds)


def read_poscar(path):
    """Read a VASP 5 POSCAR: name, species, counts, volume in cubic angstrom."""
    with open(path) as handle:
        lines = [line.split() for line in handle]
    try:
        name = " ".join(lines[0])
        scale = float(lines[1][0])
        lattice = [[float(x) for x in lines[i][:3]] for i in (2, 3, 4)]
        species = lines[5]
        counts = [int(x) for x in lines[6]]
    except (IndexError, ValueError) as exc:
        raise InputError(f"{path} is not a VASP 5 POSCAR ({exc})") from None
    if len(species) != len(counts) or not all(s.isalpha() for s in species):
        raise InputError(f"{path}: line 6 must name the species of the counts on line 7")
    a, b, c = lattice
    det = (a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
           + a[2] * (b[0] * c[1] - b[1] * c[0]))
    volume = -scale if scale < 0 else abs(det) * scale ** 3
    return {"name": name, "species": species, "counts": counts, "volume": volume}


def composition(poscar):
    """Return {element: count} of the cell."""
    result = {}
    for i, symbol in enumerate(poscar["species"]):
        result[symbol] = result.get(symbol, 0) + poscar["counts"][i]
    return result


def formula(poscar):
    """Cell formula in POSCAR order, e.g. Ni2O2."""
    return "".join(s + (str(n) if n > 1 else "") for s, n in composition(poscar).items())


def reduced_formula(comp):
    """Formula of {element: count} reduced by the common divisor, elements sorted: AsGa, NiO."""
    divisor = 0
    for n in comp.values():
        divisor = math.gcd(divisor, n)
    reduced = {s: comp[s] // divisor for s in sorted(comp)}
    return "".join(s + (str(n) if n > 1 else "") for s, n in reduced.items())


def parse_formula(text):
    """{element: count} of a formula such as Ni2O2."""
    return {s: int(n or 1) for s, n in re.findall(r"([A-Z][a-z]?)(\d*)", text)}


def fake_gaps(poscar):
    """(LDA gap, converged QSGW gap) in eV: a reference value or a hash of the formula."""
    key = reduced_formula(composition(poscar))
    for name, gaps in REFERENCE_GAPS.items():
        if reduced_formula(parse_formula(name)) == key:
            return gaps
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    lda = (digest % 300) / 100.0
    return lda, round(1.6 * lda + 0.4, 2)


def fake_total_energy(poscar):
    """A deterministic fake total energy in Ry."""
    energy = 0.0
    for symbol, count in composition(poscar).items():
        z = ATOMIC_NUMBER.get(symbol.capitalize(), 20)
        energy -= count * 0.9 * z ** 2.1
    natoms = sum(poscar["counts"])
    return energy - 0.05 * natoms * math.log(1.0 + poscar["volume"] / natoms)


def qsgw_gap(lda_gap, converged_gap, iteration):
    """The gap after `iteration` QSGW iterations started from LDA."""
    return converged_gap + (lda_gap - converged_gap) * (1.0 - CONVERGENCE) ** iteration


def read_kv(path):
    """Read a `key = value` file (blank and # lines ignored)."""
    values = {}
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise InputError(f"{path} line {number}: expected key = value")
            values[key.strip()] = value.strip()
    return values


def write_atomic(path, text):
    """Write text to path so that a reader sees the old or the new file, never a part."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_kv(path, title, values):
    """Write a `key = value` file with a # title line."""
    body = "".join(f"{key} = {value}\n" for key, value in values.items())
    write_atomic(path, f"# {title}\n{body}")
