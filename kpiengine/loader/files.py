"""Which files a definitions folder consists of: the loader reads them, the compile cache
keys on them. No imports beyond the standard library, so that a cached run can list them
without loading PyYAML or lark."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_FILES = ("kpiengine.yaml", "kpiengine.yml")
SUFFIXES = (".yaml", ".yml")


def definition_files(root: Path) -> list[Path]:
    """Every YAML file below ``root``, hidden files and folders skipped, in a stable order
    with the root project file first (so a second project file is the one reported)."""
    found: list[Path] = []
    # os.walk does not follow links to folders: a linked folder is not read at all.
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        base = Path(folder)
        found.extend(
            base / name
            for name in sorted(names)
            if name.endswith(SUFFIXES) and not name.startswith(".")
        )
    project_files = {root / name for name in PROJECT_FILES}
    return sorted(found, key=lambda p: (p not in project_files, p.relative_to(root).parts))
