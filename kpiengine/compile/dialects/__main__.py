"""``python -m kpiengine.compile.dialects > docs/dialects.md``: the generated table of
what each built-in dialect can express (tests/test_dialect_capabilities.py checks it).

``--plugins`` adds every dialect the installed plugins register (ClickHouse's, with
``pip install ./plugins/clickhouse``), from their own capability tables; docs/dialects.md
lists the built-ins only, so that it does not depend on what is installed.
"""

import sys

from kpiengine.compile.dialects import dialect_specs
from kpiengine.compile.dialects.capabilities import render_dialects_doc
from kpiengine.plugins.manager import default_host

if sys.argv[1:] == ["--plugins"]:
    host = default_host()
    host.load_entry_points()
    specs = dialect_specs(host)
    print(render_dialects_doc({name: spec.make_rules() for name, spec in specs.items()}), end="")
elif sys.argv[1:]:
    sys.exit("usage: python -m kpiengine.compile.dialects [--plugins]")
else:
    print(render_dialects_doc(), end="")
