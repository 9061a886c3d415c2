"""Reviewing KPI changes like code (SPEC §13.9): ``kpi test``, ``kpi init``, ``kpi diff``.

Test files are untrusted definitions like any other (docs/security.md): read only from
inside the project folder, size-capped, every problem a positioned diagnostic.
"""
