"""asyncinfer: run the pipeline locally, drop files into it, and follow what comes out.

Every command works on the local stack by default and on a deployed stack with ``--stack-name``, through the
same code (see target.py). Expected failures print one line and exit 1; they never print a traceback.
``main`` (app.py) is the console entry point; the commands live in this package by group.
"""

from __future__ import annotations

from asyncinfer.cli.app import main
from asyncinfer.cli.demo import demo
from asyncinfer.cli.deploy import deploy
from asyncinfer.cli.local import local
from asyncinfer.cli.pipeline import jobs, redrive, submit, watch
from asyncinfer.cli.soak import soak
from asyncinfer.cli.status import status
from asyncinfer.cli.teardown import delete

for _command in (local, submit, watch, jobs, status, demo, redrive, deploy, delete, soak):
    main.add_command(_command)

__all__ = ["main"]
