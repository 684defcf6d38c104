"""Config YAML that would mean something else: duplicate keys and sections, aliases (a billion
values in a few lines) and huge values: one short ConfigError each, quickly."""

from __future__ import annotations

import time

import pytest

from irrepscope.cli import main
from irrepscope.errors import ConfigError, quoted
from irrepscope.train.config import load_config

BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
model:
  orders: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

CASES = {
    "key": ("model:\n  hidden: 8\n  hidden: 64\n",
            "line 3: key 'hidden' is given twice (lines 2 and 3)"),
    "section": ("train: {max_epochs: 1}\nmodel: {hidden: 4}\ntrain: {accelerator: gpu}\n",
                "line 3: key 'train' is given twice (lines 1 and 3)"),
    "alias": (BOMB, "line 2: the alias *a repeats a value written elsewhere"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_file_that_means_something_else_is_one_line(case, tmp_path, capsys):
    text, expected = CASES[case]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    start = time.perf_counter()
    assert main(["model", "info", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert time.perf_counter() - start < 5
    assert len(err) == 1 and len(err[0]) < 400
    assert err[0].startswith(f"irrepscope: error: config file {path}, {expected}")


def test_override_with_an_alias_or_a_duplicate_key():
    with pytest.raises(ConfigError, match=r"override 'model.orders=\[&x 0, \*x\]': line 1: the "
                                          r"alias \*x"):
        load_config({}, ["model.orders=[&x 0, *x]"])
    with pytest.raises(ConfigError, match="key 'a' is given twice"):
        load_config({}, ["train.targets={a: 1, a: 2}"])


def test_messages_quote_huge_values_cut_short():
    huge = "[" + ",".join(["'x'"] * 3000) + "]"
    with pytest.raises(ConfigError) as err:
        load_config({}, [f"model.orders={huge}"])
    assert len(str(err.value)) < 300 and "..." in str(err.value)
    assert quoted("y" * 10_000).endswith("y'") and len(quoted("y" * 10_000)) <= 80
