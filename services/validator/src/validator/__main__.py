from tributary_runtime.entrypoint import service_main

from . import MIGRATIONS, SCHEMA
from .main import serve
from .settings import ValidatorSettings

service_main("validator", settings_factory=ValidatorSettings, serve=serve, migrations=MIGRATIONS, schema=SCHEMA)
