"""Times a PyTorch training step the way the wasm benches time theirs, and prints the one JSON line they read."""
import json
import statistics
import sys
import time

import torch


def report_step_times(step, steps, **extra):
    """Runs step() once to warm up, then `steps` timed calls; prints the median wall and CPU ms per step and the first
    and last loss, with `extra` fields (for example the network's anchor and parameter counts)."""
    losses = [step()]
    times, cpu_times = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        losses.append(step())
        times.append((time.perf_counter() - t0) * 1000)
        cpu_times.append((time.process_time() - c0) * 1000)
    print(json.dumps({
        'framework': 'pytorch', 'version': torch.__version__, 'threads': torch.get_num_threads(),
        'value': round(statistics.median(times), 1), 'unit': 'ms', 'steps': steps,
        'cpuMsMedian': round(statistics.median(cpu_times), 1),
        'minMs': round(min(times), 1), 'firstLoss': round(losses[0], 4), 'lastLoss': round(losses[-1], 4),
        **extra,
    }))


def print_op_profile(step, rows=30):
    """Runs step() once under torch.profiler and prints (to stderr) each operator's self CPU time, largest first: the
    per-op side of a comparison with the wasm bench's --profile."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows), file=sys.stderr)
