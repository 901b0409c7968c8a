"""The docs name the tests that show each defence: every name must be a real test."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_docs_cite_exists():
    cited = [(doc.name, path, name) for doc in sorted((ROOT / "docs").glob("*.md"))
             for path, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", doc.read_text())]
    assert len(cited) > 50  # the threat model cites its tests this way
    missing = [(doc, path, name) for doc, path, name in cited
               if not (ROOT / path).exists()
               or not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M)]
    assert missing == []
