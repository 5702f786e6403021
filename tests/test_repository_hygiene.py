"""The repository speaks for itself: no pointers to files outside it or to how it was made.

Every tracked text file (package, README, docs, tests, benchmarks, examples)
is searched for references a reader of the repository cannot follow: a
folder of notes beside the repository, internal design notes, tracker
numbers, the development process, temporary paths, or papers named by number
instead of cited. The patterns are built from pieces so that this file, which
is scanned too, does not match itself.
"""
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

_PATTERNS = {
    "a notes folder outside": "sha" + "red/",
    "internal notes": r"\b(METHODS|DESIGN)" + r"\.md\b",
    "a tracker number": r"\b[Ii]ss" + r"ues? #?[0-9]+",
    "an acceptance checklist": r"[Mm]ust[- ]" + "show",
    "the development process": r"(?i)sess" + r"ions?\b",
    "a temporary path": r"/t" + r"mp/",
    "a paper cited by number": r"(?i)\bpaper " + r"[0-9]\b",
}
# pytest's fixture scope is the one legitimate use of the word.
_ALLOWED = re.compile(r"""scope\s*=\s*["']""" + "ses" + "sion" + """["']""")


def _tracked_text_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    for name in out.decode().split("\0"):
        path = ROOT / name
        if not name or name.endswith(".gz") or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary
            continue
        yield name, data.decode("utf-8", errors="replace")


def find_hits(files):
    """``[(path, line_no, what, line)]`` for every forbidden reference in ``files``."""
    compiled = {what: re.compile(p) for what, p in _PATTERNS.items()}
    hits = []
    for name, text in files:
        for no, line in enumerate(text.splitlines(), 1):
            cleaned = _ALLOWED.sub("", line)
            for what, pattern in compiled.items():
                if pattern.search(cleaned):
                    hits.append((name, no, what, line.strip()))
    return hits


def test_no_reference_outside_the_repository_or_to_its_development():
    hits = find_hits(_tracked_text_files())
    assert not hits, "Forbidden references:\n" + "\n".join(
        f"{name}:{no}: {what}: {line}" for name, no, what, line in hits)


@pytest.mark.parametrize("line, what", [
    ("see " + "sha" + "red/notes.txt", "a notes folder outside"),
    ("as " + "METHODS" + ".md says", "internal notes"),
    ("measured (" + "iss" + "ue 3)", "a tracker number"),
    ("Must" + "-show 2", "an acceptance checklist"),
    ("no GPU in this " + "ses" + "sion", "the development process"),
    ("a /" + "tmp/x.py script", "a temporary path"),
    ("Paper" + " 1's blobs", "a paper cited by number"),
])
def test_each_pattern_is_caught(line, what):
    assert [h[2] for h in find_hits([("x.md", "ok\n" + line)])] == [what]


def test_fixture_scope_is_allowed_and_clean_text_passes():
    fixture = "@pytest.fixture(scope=\"" + "ses" + "sion" + "\")"
    assert find_hits([("t.py", fixture + "\nThe IP Ensemble paper, Section 7.\n")]) == []
