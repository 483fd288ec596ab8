"""Soak: N files through the local stack with faults on, then an audit of the pipeline's promise.

``runner`` drives the files through a stack; ``collectors`` gather the result events and dead letters meanwhile;
``snapshot`` reads what the stack holds once the run is over; ``judgement`` checks the promise against that
snapshot (a pure function); ``report`` names the report file and lays out its fault table.
"""

from asyncinfer.soak.judgement import Audit, judge
from asyncinfer.soak.report import REPORT_FILE, fault_rows
from asyncinfer.soak.runner import SoakSettings, run

__all__ = ["REPORT_FILE", "Audit", "SoakSettings", "fault_rows", "judge", "run"]
