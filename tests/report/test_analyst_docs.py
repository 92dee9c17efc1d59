"""Issue 18 item 12: the README links only what a clone has; architecture and schema live in docs/."""

from __future__ import annotations

import re
from pathlib import Path

from portwatch.report import schema

REPO = Path(__file__).resolve().parent.parent.parent


def test_readme_links_exist_in_the_repository():
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        assert (REPO / link).exists(), link
        assert (REPO / link).resolve().is_relative_to(REPO), link
    assert "docs/architecture.md" in text and "docs/schema.md" in text
    assert "shared/DESIGN.md" not in text


def test_schema_doc_names_every_column_and_payload_bytes():
    doc = (REPO / "docs" / "schema.md").read_text()
    for col in (*schema.FLOW_COLUMNS, *schema.META_COLUMNS, *schema.FINDING_COLUMNS, *schema.SERVER_COLUMNS):
        assert f"`{col}`" in doc, col
    assert "orig_bytes" in doc and "payload" in doc


def test_docs_link_only_what_exists():
    for page in (REPO / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not link.startswith(("http://", "https://")):
                assert (page.parent / link).exists(), f"{page.name}: {link}"
