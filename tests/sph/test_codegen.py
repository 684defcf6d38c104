"""The committed generated torch code equals a fresh generation from the symbolic source."""

from __future__ import annotations

import subprocess
import sys

import sympy as sp

from irrepscope.sph import codegen
from irrepscope.sph.symbolic import X, Y, Z, component_expressions


def test_generated_files_are_up_to_date() -> None:
    # covers every registered target (the Triton file too, when its emitter is present)
    done = subprocess.run([sys.executable, "-m", "irrepscope.sph.codegen", "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_programs_equal_the_symbolic_expressions() -> None:
    for l in (1, 4, 7):
        p = codegen.forward_program(l)
        subs = {}
        for name, expr in p.assignments:
            subs[sp.Symbol(name, real=True)] = expr.xreplace(subs)
        for out, ref in zip(p.outputs, component_expressions(l), strict=True):
            value = out.xreplace(subs).subs(codegen.S, 1)
            assert sp.expand(value - ref) == 0
    assert {X, Y, Z} >= component_expressions(3)[0].free_symbols
