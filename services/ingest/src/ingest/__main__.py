from tributary_runtime.entrypoint import service_main

from . import MIGRATIONS, SCHEMA
from .main import serve
from .settings import IngestSettings

service_main("ingest", settings_factory=IngestSettings, serve=serve, migrations=MIGRATIONS, schema=SCHEMA)
