"""Where one inference call's time goes: OpenVINO's per-node counters of the shipped IR, summed by the part of the
graph each compiled node came from (the front end, the COVID-19 CNN, the gate, the rest).

The counters add a little overhead of their own to each node; what the bare call spends outside the nodes (shape
inference and memory for the input's length, redone on every call of a graph of dynamic length) is the bare call's
median, from the latency table, minus their sum.
"""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

# (part, the torch module path its nodes' original names start with); the first match wins.
PARTS = (("front end (band limit, DFT, log-mel, frame energy)", "__module.front_end"),
         ("COVID-19 CNN (INT8) and its MFCC read-out", "__module.covid"),
         ("sound-type gate (its networks side by side, float)", "__module.sound"))
REST = "the rest (layout reorders, pooling and the heads' read-outs)"


def part_of(original_names: str) -> str:
    """The part of the graph a compiled node belongs to, from the comma-separated names of the ops fused into it."""
    for part, prefix in PARTS:
        if any(name.startswith(prefix + "/") or name.startswith(prefix + ".") or name == prefix
               for name in original_names.split(",")):
            return part
    return REST


def time_parts(xml: Path, waveform: np.ndarray, config: dict[str, str], calls: int = 200) -> dict[str, float]:
    """{part: ms per call} of `calls` calls on `waveform` (1, samples), after warm-up calls, compiled with `config`."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {**config, "PERF_COUNT": "YES"})
    parts = {op.get_friendly_name(): part_of(op.get_rt_info()["originalLayersNames"].astype(str))
             for op in compiled.get_runtime_model().get_ops()}
    request = compiled.create_infer_request()
    for _ in range(20):
        request.infer({0: waveform})
    seconds: collections.Counter = collections.Counter()
    for _ in range(calls):
        request.infer({0: waveform})
        for node in request.profiling_info:
            seconds[parts.get(node.node_name, REST)] += node.real_time.total_seconds()
    return {part: 1000.0 * s / calls for part, s in seconds.most_common()}
