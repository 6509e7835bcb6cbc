from tributary_runtime.entrypoint import service_main

from . import MIGRATIONS, SCHEMA
from .main import serve
from .settings import EnricherSettings

service_main("enricher", settings_factory=EnricherSettings, serve=serve, migrations=MIGRATIONS, schema=SCHEMA)
