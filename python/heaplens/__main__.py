"""The ``heaplens`` command line (``heaplens report``, ``diff``, ``export``; see
``heaplens --help``). The commands are implemented in Rust; this only hands them the arguments.
"""

import sys

from heaplens import _native


def main(argv=None):
    """Runs the command line and returns its exit status (0 ok, 1 leak found, 2 error)."""
    sys.stdout.flush()
    return _native.cli_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
