"""``python -m kpiengine.compile.dialects > docs/dialects.md``: the generated table of
what each built-in dialect can express (tests/test_dialect_capabilities.py checks it)."""

from kpiengine.compile.dialects.capabilities import render_dialects_doc

print(render_dialects_doc(), end="")
