"""Entry script of the frozen application: the same `studio` command, safe for spawned workers.

Job workers are started with ``spawn``; in a frozen build the child re-runs this executable, and
``freeze_support`` turns that run into the worker instead of a second copy of the studio.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from studio.cli import main

    sys.exit(main())
