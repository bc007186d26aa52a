"""``python -m clrnet.train`` (and ``torchrun -m clrnet.train``): the ``clrnet train`` command.

``torchrun --nproc_per_node=2 -m clrnet.train --config refine-ddp`` trains the
reconstruction network data-parallel (see ``clrnet.training.distributed``).
"""

from __future__ import annotations

import sys

from clrnet.cli.main import app


def main() -> None:
    app(["train", *sys.argv[1:]], prog_name="clrnet train")


if __name__ == "__main__":
    main()
