"""Training pipeline for coughkd (torch side; the runtime in `coughkd/` never imports it)."""
