from tributary_runtime.settings import ServiceSettings


class FlowStateSettings(ServiceSettings):
    http_port: int = 8004
