from tributary_runtime.entrypoint import service_main

from . import MIGRATIONS, SCHEMA
from .main import serve
from .settings import FlowStateSettings

service_main("flow_state", settings_factory=FlowStateSettings, serve=serve, migrations=MIGRATIONS, schema=SCHEMA)
