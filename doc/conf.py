"""Sphinx configuration of the skinfluence documentation (``make doc``)."""
import os
import re
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import skinfluence  # noqa: E402

project = "skinfluence"
author = "skinfluence developers"
copyright = "skinfluence developers"
release = skinfluence.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # a local MathJax copy: formulas render without a network
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5",
                    "sg_execution_times.rst"]
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Which training samples help or hurt your model",
                      "fixed_sidebar": True}

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
}


def _skip_routing_setters(app, what, name, obj, skip, options):
    # set_fit_request & co. are scikit-learn's generated routing setters: their
    # docstrings point into scikit-learn's own documentation
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _quote_fitted_attributes(app, what, name, obj, options, lines):
    # "of shape (n_features_in_,)" reads as a link target in reST: quote the fitted
    # attribute inside shape specifications only (not in code, not in attribute names)
    def quote(match):
        inner = re.sub(r"(?<![`\w.])([a-z][a-z0-9_]*[a-z0-9]_)(?![`\w])", r"``\1``",
                       match.group(1))
        return f"shape ({inner})"

    for i, line in enumerate(lines):
        if not line.lstrip().startswith((">>>", "...")):
            lines[i] = re.sub(r"shape \(([^)]*)\)", quote, line)


def setup(app):
    app.connect("autodoc-skip-member", _skip_routing_setters)
    app.connect("autodoc-process-docstring", _quote_fitted_attributes)


# Examples print convergence notes of their own models; they are not doc problems.
warnings.filterwarnings("ignore", category=UserWarning, message=".*non-interactive.*")
