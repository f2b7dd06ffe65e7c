"""What the Cockpit page loads, read from its sources (cockpit/): index.html's scripts and
stylesheet and every module they import, so that a package test can tell a file the page
needs from one it merely ships."""

from __future__ import annotations

import os
import re

PAGE_DIR = "/usr/share/cockpit/hostwarden"


def page_files(source_dir: str) -> set[str]:
    """manifest.json, and every file of the page that index.html reaches."""
    page = os.path.join(source_dir, "cockpit")
    html = open(os.path.join(page, "index.html")).read()
    todo = [m for m in re.findall(r'(?:src|href)="([^"]+)"', html) if not m.startswith("../")]
    found = {"manifest.json", "index.html"}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        if name.endswith(".js"):
            text = open(os.path.join(page, name)).read()
            todo += re.findall(r'from "\./([^"]+)"', text)
    return found
