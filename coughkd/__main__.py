"""Run the command line: `python -m coughkd predict FILE... [--json]`."""
import sys

from .cli import main

sys.exit(main())
