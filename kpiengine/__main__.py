"""``python -m kpiengine`` runs the CLI."""

from kpiengine.cli import entry

entry()
