"""Which project a PATH given to ``kpi test`` (a test file, a tests folder) belongs to."""

from __future__ import annotations

from pathlib import Path

from kpiengine.loader.definitions import PROJECT_FILES, find_project_root


def project_for(path: Path | None) -> Path:
    """The nearest folder from ``path`` upward holding ``kpiengine.yaml``; a folder without
    one is taken as the project itself (a project file is optional, SPEC §3)."""
    if path is None:
        return find_project_root()
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if any((folder / name).is_file() for name in PROJECT_FILES):
            return folder
    return start
