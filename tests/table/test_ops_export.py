"""The spreadsheet-safe form of a cell (jobauto/table/ops.py safe_cell), behind
`jobauto export --spreadsheet-safe`; the command itself: cli/test_tables_export.py."""

from __future__ import annotations

import pytest

from jobauto.table.ops import safe_cell


@pytest.mark.parametrize("cell", ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx",
                                  "=", "-", "+", "@", "-1.5x", "--3", "-1e", "＝1+2", "＋1", "－1",
                                  "＠SUM(A1)"])
def test_formula_like_cells_get_a_single_quote(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["", "plain", "1+2", "0.5", "-1.5", "+7", "-2e-3", "-.5", "+1E10",
                                  " =1", "'=1", "a=b", "x@y"])
def test_numbers_and_other_cells_stay(cell: str) -> None:
    assert safe_cell(cell) == cell
