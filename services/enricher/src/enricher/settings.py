from tributary_runtime.settings import ServiceSettings


class EnricherSettings(ServiceSettings):
    http_port: int = 8003
