"""The API reference lists every public name (its autosummary entries in doc/api.rst)."""
import importlib
import pathlib
import re

import pytest

API_PAGE = pathlib.Path(__file__).resolve().parents[1] / "doc" / "api.rst"
# modules whose public names are those in their __all__
PUBLIC_MODULES = ["skinfluence", "skinfluence.metrics", "skinfluence.plotting",
                  "skinfluence.models", "skinfluence.callbacks"]


def _listed():
    """Every name an autosummary block of the API page documents, as a dotted path."""
    listed, module = set(), "skinfluence"
    for line in API_PAGE.read_text().splitlines():
        current = re.match(r"\.\. currentmodule:: (\S+)", line)
        if current:
            module = current.group(1)
        entry = re.match(r"   ([A-Za-z_][\w.]*)$", line)
        if entry and not line.strip().startswith(":"):
            listed.add(f"{module}.{entry.group(1)}")
    return listed


def _public_names():
    names = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names |= {f"{module_name}.{n}" for n in module.__all__}
    datasets = importlib.import_module("skinfluence.datasets")
    names |= {f"skinfluence.datasets.{n}" for n in dir(datasets)
              if (n.startswith(("load_", "make_")) or n == "flip_labels")
              and getattr(getattr(datasets, n), "__module__", "") == "skinfluence.datasets"}
    return names


def test_the_parser_reads_the_page():
    listed = _listed()
    assert "skinfluence.influence_scores" in listed and "skinfluence.metrics.fairness_report" \
        in listed
    assert len(listed) > 30


@pytest.mark.parametrize("name", sorted(_public_names()))
def test_every_public_name_is_on_the_api_page(name):
    listed = _listed()
    # a name re-exported at the top level may be documented where it lives
    short = name.rsplit(".", 1)[1]
    assert name in listed or any(x.endswith(f".{short}") for x in listed), \
        f"{name} is public but not in doc/api.rst"
