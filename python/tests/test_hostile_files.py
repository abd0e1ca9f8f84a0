"""Hostile YAML for the testbed's own reader: a "billion laughs" of nested aliases, deep
nesting, and text that is not UTF-8 are refused quickly, with the line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from lambdaroute.testbed.experiment import ExperimentError, YAMLBudgetError, load, read_yaml

BILLION_LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    + ["scenario: x.yaml"]
) + "\n"


def test_a_billion_laughs_is_refused_in_milliseconds_with_its_line(tmp_path: Path) -> None:
    assert len(BILLION_LAUGHS.splitlines()) == 10
    started = time.monotonic()
    with pytest.raises(YAMLBudgetError) as refused:
        read_yaml(BILLION_LAUGHS)
    assert time.monotonic() - started < 1.0
    assert "aliases" in str(refused.value)
    assert 2 <= refused.value.problem_mark.line + 1 <= 9
    # Through an experiment file: the file and the line.
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(ExperimentError, match=r"(?s)bomb\.yaml: not valid YAML: .*line 6"):
        load(path)


def test_the_budget_lets_ordinary_aliases_through_and_stops_deep_nesting() -> None:
    assert read_yaml("base: &b {rate: 2}\nother: *b\n") == {"base": {"rate": 2}, "other": {"rate": 2}}
    with pytest.raises(yaml.YAMLError, match="nested more than 64"):
        read_yaml("[" * 100 + "]" * 100)


def test_invalid_utf8_is_refused_with_its_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"scenario: x.yaml\ndescription: caf\xe9\n")
    with pytest.raises(ExperimentError, match=r"latin1\.yaml:2:17: invalid UTF-8 at line 2, byte 17"):
        load(path)
