"""``python -m validator.purge [--older-than-days DAYS] [--json]``: the staged rows retention, one pass
now (``tributary_runtime.retention``). The rows with errors stay, as the service's own pass keeps
them: the failed-rows download returns them."""

from tributary_runtime.retention import command

from . import SCHEMA
from .findings import FAILED_ROW

if __name__ == "__main__":
    command("validator", SCHEMA, keep=FAILED_ROW)
