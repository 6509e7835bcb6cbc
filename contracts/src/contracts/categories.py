from enum import StrEnum


class Category(StrEnum):
    CMDB_EXPORT = "cmdb_export"
    APP_DISCOVERY = "app_discovery"
    INFRASTRUCTURE = "infrastructure"
    SENSITIVE_DATA = "sensitive_data"


class Phase(StrEnum):
    UPLOAD = "upload"
    VALIDATION = "validation"
    ENRICHMENT = "enrichment"
    COMPLETE = "complete"


PHASES: tuple[Phase, ...] = (Phase.UPLOAD, Phase.VALIDATION, Phase.ENRICHMENT, Phase.COMPLETE)
