"""What `make bench` shows: the comparison table as text (stdout) and Markdown (results.md), the
raw numbers (results.json) and a plot (bench.png). Reads the results dict of tools/bench.py."""
import json

import bench_targets

MIB = 1024


def number(value):
    """12345.6 -> '12 346' (thin grouping, as the README writes numbers); None -> '-'."""
    return "-" if value is None else f"{value:,.0f}".replace(",", " ")


def ratio(value):
    return "-" if value is None else f"{value:.2f}"


def decimal1(value):
    return "-" if value is None else f"{value:.1f}"


def mib(kb):
    return decimal1(None if kb is None else kb / MIB)


def split_text(split):
    """{'be1': 0.334, ...} -> '33/33/34' (percent per backend, in backend order)."""
    return "/".join(f"{share * 100:.0f}" for share in split.values()) or "-"


# Columns of the comparison after the target's name: header, field of the target's summary,
# how it is written.
COLUMNS = (
    ("req/s", "rps", number),
    ("×direct", "rps_ratio", ratio),
    ("p50@16 µs", "p50_us_16", number),
    ("p90@16 µs", "p90_us_16", number),
    ("p99@16 µs", "p99_us_16", number),
    ("p50@16 ×", "p50_16_ratio", ratio),
    ("p99@16 ×", "p99_16_ratio", ratio),
    ("p50@1 µs", "p50_us_1", number),
    ("p50@1 ×", "p50_1_ratio", ratio),
    ("CPU ms/1k RPCs", "cpu_ms_per_1k_rpcs", decimal1),
    ("CPU ms/1k @1", "cpu_ms_per_1k_rpcs_1", decimal1),
    ("backends CPU ms/1k", "backends_cpu_ms_per_1k_rpcs", decimal1),
    ("client CPU ms/1k", "client_cpu_ms_per_1k_rpcs", decimal1),
    ("CPUs busy", "cpus_busy", ratio),
    ("ceiling ×direct", "ceiling_ratio", ratio),
    ("RSS idle MiB", "rss_idle_kb", mib),
    ("RSS after MiB", "rss_after_kb", mib),
    ("RSS 1000 conns MiB", "rss_idle_conns_kb", mib),
    ("split %", "split", split_text),
    ("errors", "errors", str),
)

LEGEND = (
    "req/s: h2load, one connection, 16 streams in flight. p50/p90/p99@16: latency of the Go "
    "gRPC client with 16 RPCs in flight on one channel; p50@1: with 1. ×: ratio to direct "
    "(throughput: higher is better; latency: lower is better). CPU: utime+stime of the "
    "balancer's process tree during the h2load runs, per 1000 requests (h2steer's BPF programs "
    "run in the client's context and are not in it); CPU @1: the same during the latency "
    "runs at 1 in flight, per 1000 RPCs; backends CPU: the three grpc-go "
    "backends together, per 1000 requests (one server with all 16 RPCs of a connection "
    "batches better than three with a third each; how much more also depends on how a "
    "balancer writes to them); client CPU: h2load's, per 1000 requests (behind h2steer it "
    "includes h2steer's connect and sockops programs, which run in the client's context). "
    "CPUs busy: what "
    "the throughput run kept busy (client + backends + balancer CPU per request × req/s; "
    "the machine has {cpus}). ceiling ×direct: an upper bound, {cpus} CPUs / (client + "
    "backends CPU per request behind this target), over direct's req/s — what a balancer "
    "that cost no CPU could reach at best were the run bound by CPU alone; with 16 in "
    "flight a run is also bound by latency (req/s = 16 / latency), so none reaches its "
    "ceiling, direct included. "
    "RSS: VmRSS of the tree, before any load, "
    "after the runs, and with 1000 idle HTTP/2 client connections open (h2steer's BPF maps are "
    "kernel memory, not in it). "
    "split: share of the latency runs' RPCs per backend (be1/be2/be3). h2steer-poll: a second "
    "h2steer daemon, with busy polling on (`busy_poll_us={poll_us}`: before sleeping, its loop "
    "polls for up to {poll_us} µs while at most {poll_streams} streams are open; off by "
    "default). "
    "References, not "
    "balancers of RPCs: h2steer-1be is the same daemon with a service of the first backend "
    "only (its data path without the spreading; its RSS is the h2steer row's); haproxy-tcp is haproxy as an L4 relay "
    "(`mode tcp`, one worker): all the RPCs of a connection go to one backend — the cost of "
    "an L4 proxy, which the issue's targets are about."
)


def comparison_rows(results):
    return [[name] + [write(results["targets"][name][field]) for _, field, write in COLUMNS]
            for name in bench_targets.TARGETS]


def comparison_headers():
    return ["target"] + [header for header, _, _ in COLUMNS]


SCALE_TARGETS = ("direct", "h2steer", "nghttpx", "haproxy", "nginx")
SCALE_HEADERS = ["load (1 client connection unless said)", "metric", *SCALE_TARGETS,
                 "h2steer / direct"]


def scale_rows(results):
    return [[case["label"], m["metric"]] +
            [number_or_fraction(m.get(name)) for name in SCALE_TARGETS] + [ratio(m["ratio"])]
            for case in results["scale"] for m in case["metrics"]]


def number_or_fraction(value):
    """MB/s and the like can be small: one decimal below 100."""
    return decimal1(value) if value is not None and value < 100 else number(value)


def setup_line(results):
    meta = results["meta"]
    c = meta["counts"]
    reps = runs_text(meta["reps"])
    quick = " (--quick: tiny counts, not a measurement)" if meta["quick"] else ""
    return (f"3 grpc-go backends; per run {number(c['h2load'])} h2load requests, "
            f"{number(c['unary16'])} RPCs at 16 in flight, {number(c['unary1'])} at 1; {reps}; "
            f"{meta['message_bytes']}-byte messages; {meta['cpus']} CPUs ({meta['cpu']}), "
            f"kernel {meta['kernel']}{quick}")


def runs_text(reps):
    return f"median of {reps} interleaved runs" if reps > 1 else "1 run"


def text(results):
    """Everything for stdout."""
    out = ["", setup_line(results), "",
           text_table(comparison_headers(), comparison_rows(results)), ""]
    if results["scale"]:
        out += [text_table(SCALE_HEADERS, scale_rows(results), text_columns=2), ""]
    out += outcome_lines(results)
    return "\n".join(out)


def outcome_lines(results):
    meta = results["meta"]
    lines = [f"errors: {results['errors']}"]
    lines += [f"problem: {p}" for p in results["problems"]]
    lines += [f"another balancer failed (not counted as an error): {p}"
              for p in results.get("peer_problems", [])]
    uneven = [n for n, s in results["targets"].items() if not s["split_even"]]
    if uneven:
        lines.append(f"uneven split (a backend outside 30-37 %): {', '.join(uneven)}")
    took = f"took {meta['duration_s']} s (comparison {meta['comparison_s']} s"
    took += f", scale {meta['scale_s']} s)" if meta["scale_s"] is not None else ")"
    return lines + [took]


def text_table(headers, rows, text_columns=1):
    """Columns padded to their widest cell: the first text_columns left-aligned, the numbers
    right-aligned."""
    widths = [max(len(row[i]) for row in [headers] + rows) for i in range(len(headers))]

    def line(cells):
        return "  ".join(c.ljust(w) if i < text_columns else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] +
                     [line(r) for r in rows])


def markdown_table(headers, rows):
    return "\n".join(["| " + " | ".join(headers) + " |",
                      "|" + "|".join(" --- " for _ in headers) + "|"] +
                     ["| " + " | ".join(row) + " |" for row in rows])


def write_markdown(results, path):
    meta = results["meta"]
    parts = [
        "# h2steer benchmark",
        "",
        f"`make bench` on {meta['date_utc']}: one client connection to each target — direct to "
        "one grpc-go backend, or through h2steer, nginx (`grpc_pass`), haproxy (`mode http`, h2) "
        "or nghttpx to three, round robin, one worker each (h2steer also with busy polling, "
        "h2steer-poll); and two references, h2steer-1be "
        "(h2steer to the first backend only) and haproxy-tcp (an L4 relay).",
        "",
        setup_line(results) + ".",
        "",
        markdown_table(comparison_headers(), comparison_rows(results)),
        "",
        LEGEND.format(cpus=meta["cpus"], poll_us=bench_targets.BUSY_POLL_US,
                      poll_streams=bench_targets.BUSY_POLL_MAX_STREAMS),
        "",
        "Versions: " + ", ".join(f"{name} {v}" for name, v in meta["versions"].items()) +
        ". The balancers' configurations are in tools/bench_targets.py.",
    ]
    if results["scale"]:
        parts += ["", "## Scale: h2steer, direct and the other balancers", "",
                  markdown_table(SCALE_HEADERS, scale_rows(results))]
    parts += ["", "## Outcome", ""] + [f"- {line}" for line in outcome_lines(results)]
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def write_json(results, path):
    with open(path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")


LATENCIES = (("p50_us_16", "p50, 16 in flight"), ("p90_us_16", "p90, 16 in flight"),
             ("p99_us_16", "p99, 16 in flight"), ("p50_us_1", "p50, 1 in flight"))


def bar_colour(name):
    if name == "direct":
        return "grey"
    if name.startswith("h2steer") and name in bench_targets.BALANCERS:
        return "tab:blue"
    return "tab:orange" if name in bench_targets.BALANCERS else "silver"


def plot(results, path):
    """Latency percentiles per target as grouped bars, and throughput per target."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(bench_targets.TARGETS)
    summary = results["targets"]
    fig, (lat_ax, rps_ax) = plt.subplots(1, 2, figsize=(14, 5.5),
                                         gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(LATENCIES)
    for k, (field, label) in enumerate(LATENCIES):
        xs = [i + (k - (len(LATENCIES) - 1) / 2) * width for i in range(len(names))]
        values = [summary[n][field] or 0 for n in names]
        bars = lat_ax.bar(xs, values, width, label=label)
        lat_ax.bar_label(bars, labels=[number(v) for v in values], fontsize=7, rotation=90,
                         padding=2)
    lat_ax.set_xticks(range(len(names)), names)
    lat_ax.set_ylabel("latency (µs), lower is better")
    lat_ax.set_title("gRPC unary latency, one channel (Go client)")
    lat_ax.margins(y=0.18)
    lat_ax.legend(fontsize=8)

    rps = [summary[n]["rps"] or 0 for n in names]
    bars = rps_ax.bar(names, rps, color=[bar_colour(n) for n in names])
    rps_ax.bar_label(bars, labels=[f"{number(v)}\n{ratio(summary[n]['rps_ratio'])}×"
                                   for n, v in zip(names, rps)], fontsize=8, padding=2)
    rps_ax.set_ylabel("requests/s, higher is better")
    rps_ax.set_title("throughput: h2load, 1 connection, 16 streams")
    rps_ax.tick_params(axis="x", labelrotation=30)
    lat_ax.tick_params(axis="x", labelrotation=30)
    rps_ax.margins(y=0.18)

    meta = results["meta"]
    fig.suptitle(f"h2steer vs direct (1 backend) and nginx, haproxy, nghttpx (3 backends); "
                 f"references: h2steer-1be, haproxy-tcp (L4) — "
                 f"{meta['cpus']}-CPU VM, {runs_text(meta['reps'])}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
