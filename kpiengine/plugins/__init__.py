"""Plugins stage: one pluggy manager per project (:class:`PluginHost`), the built-in plugin.

``PluginHost`` and ``PluginContext`` (what a hook's ``context`` argument is) are the
public names; they are imported on first use, so that importing the built-in plugin
stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kpiengine.plugins.manager import PluginContext, PluginFailure, PluginHost

__all__ = ["PluginContext", "PluginFailure", "PluginHost"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kpiengine.plugins import manager

        return getattr(manager, name)
    raise AttributeError(name)
