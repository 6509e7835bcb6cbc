import sys

from tributary_runtime.entrypoint import service_main

from . import MIGRATIONS, SCHEMA
from .main import serve
from .settings import IngestSettings

if sys.argv[1:2] == ["keys"]:
    from .key_commands import main

    sys.exit(main(sys.argv[2:]))
service_main("ingest", settings_factory=IngestSettings, serve=serve, migrations=MIGRATIONS, schema=SCHEMA)
