from tributary_runtime.migrations import run_env

run_env()
