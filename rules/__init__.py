"""Routing decisions: the responsibility list (权责清单) as validated data, compiled to durable-rules.

Reads only its own data files; imports nothing from store/, activities/, web/ or workflows/
(except the plain dataclasses of workflows.types is not needed: decisions are returned as dicts).
"""
