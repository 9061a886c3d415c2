"""kpiengine: declarative KPIs in YAML, compiled through sqlglot to SQL for any engine.

Imports are lazy so that ``kpi --help`` and ``kpi validate`` start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from kpiengine.api import KpiProject, connect, load

__all__ = ["KpiProject", "__version__", "connect", "load"]


def __getattr__(name: str) -> Any:
    if name in ("load", "connect", "KpiProject"):
        from kpiengine import api

        return getattr(api, name)
    raise AttributeError(name)
