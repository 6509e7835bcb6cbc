"""``python -m enricher.purge [--older-than-days DAYS] [--json]``: the staged rows retention, one pass
now (``tributary_runtime.retention``)."""

from tributary_runtime.retention import command

from . import SCHEMA

if __name__ == "__main__":
    command("enricher", SCHEMA)
