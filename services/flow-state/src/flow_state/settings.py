from tributary_runtime.settings import ServiceSettings


class FlowStateSettings(ServiceSettings):
    http_port: int = 8004
    # The web dashboard (flow_state.dashboard) forwards uploads to ingest and findings requests to
    # the validator from this process, so these are the addresses flow-state reaches them at
    # (TRIBUTARY_INGEST_URL / TRIBUTARY_VALIDATOR_URL), not addresses a browser must reach.
    ingest_url: str = "http://127.0.0.1:8001"
    validator_url: str = "http://127.0.0.1:8002"
    # How long a forwarded upload may take end to end: ingest answers after parsing and publishing it all.
    dashboard_proxy_timeout_s: float = 600.0
    # Comment lines on an idle event stream so proxies and the browser keep the connection open.
    dashboard_heartbeat_s: float = 15.0
    # The page's polling fallback (no event stream): while any flow runs, and while all wait or are done.
    dashboard_poll_active_s: float = 5.0
    dashboard_poll_idle_s: float = 15.0
