"""The ``heaplens`` command line (``heaplens report``, ``diff``, ``export``, ``attach``...; see
``heaplens --help``). The commands are implemented in Rust; this only hands them the arguments,
and the directory that holds this package: ``heaplens attach`` offers it to a process that has
no heaplens of its own (``--python-path`` overrides it).
"""

import os
import sys

from heaplens import _native


def main(argv=None):
    """Runs the command line and returns its exit status (0 ok, 1 leak found, 2 error)."""
    sys.stdout.flush()
    python_path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return _native.cli_main(list(sys.argv[1:] if argv is None else argv), python_path)


if __name__ == "__main__":
    sys.exit(main())
