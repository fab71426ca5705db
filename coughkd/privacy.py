"""Nothing leaves the machine: every telemetry switch of the libraries coughkd runs on, set in code.

A health tool must send nothing anywhere, so this does not ask the user: `coughkd/__init__.py` imports this module
before anything else, which puts it ahead of openvino, gradio and huggingface_hub wherever coughkd is used (the CLI,
app.py, the desktop build, the Space). Environment variables are overwritten, not defaulted, because a stray
`GRADIO_ANALYTICS_ENABLED=True` in a user's shell must not turn analytics back on; child processes inherit them.
"""
from __future__ import annotations

import os
import sys

OFFLINE_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",  # Gradio's usage analytics and its version check against api.gradio.app
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub's telemetry, through which Gradio's analytics travel
    "DO_NOT_TRACK": "1",  # the cross-tool convention, honoured by huggingface_hub among others
}
# OpenVINO's Google Analytics client: `import openvino` sends an event to www.google-analytics.com and writes
# ~/intel/openvino_ga_cid. Every user of it (openvino.tools.ovc, nncf) falls back to a no-op stub when the import
# fails, and a None entry in sys.modules makes the import fail.
BLOCKED_MODULES = ("openvino_telemetry",)


def apply() -> None:
    """Switch everything off; idempotent. Too late for a blocked module that something imported already."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    for name in BLOCKED_MODULES:
        sys.modules.setdefault(name, None)


apply()
