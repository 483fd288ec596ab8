"""What became of each record of an event: the report both record loops (``submission.submit_event``,
``completion.complete_event``) return, and their handlers log and count."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Protocol, TypeVar


class RecordOutcome(Protocol):
    @property
    def action(self) -> StrEnum: ...


Outcome = TypeVar("Outcome", bound=RecordOutcome)


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record that could not be handled; the invocation fails with every ``message`` after the loop."""

    message: str
    index: int | None = None  # the record's position; None when the event as a whole is unusable
    error: Exception | None = None  # what was raised, when something was


@dataclass(slots=True)
class BatchReport(Generic[Outcome]):
    """Every record's outcome or failure: failures are collected, not raised, so every record gets its turn."""

    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)

    def count(self, action: StrEnum) -> int:
        return sum(1 for outcome in self.outcomes if outcome.action is action)

    def counts(self) -> dict[str, int]:
        """Outcomes per action, in the order the actions first occurred."""
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
        return counts

    def failure_summary(self) -> str:
        return "; ".join(failure.message for failure in self.failures)
