"""Domain exceptions. The core raises only these; the edges map them (HTTP, CLI)."""

from __future__ import annotations

from collections.abc import Sequence


class CoordinatorError(Exception):
    """Base of every error the library raises on purpose.

    ``code`` is a stable slug used in problem+json ``type`` URIs and CLI output;
    ``message`` is a human sentence (English in code, the edges may translate).
    """

    code = "coordinator-error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(CoordinatorError):
    code = "not-found"


class CaseNotFound(NotFound):
    code = "case-not-found"

    def __init__(self, case_id: object) -> None:
        super().__init__(f"case {case_id} was not found", case_id=str(case_id))


class NotCaseMember(CaseNotFound):
    """The actor has no access to the case. Deliberately indistinguishable from
    ``CaseNotFound`` at the edges (same code, message and 404), so ids leak nothing."""

    code = "case-not-found"


class PermissionDenied(CoordinatorError):
    """The actor may see the case (or act at all) but not do this (HTTP 403)."""

    code = "permission-denied"


class UnknownWorkflow(NotFound):
    code = "unknown-workflow"


class InvalidInput(CoordinatorError):
    code = "invalid-input"


class NotEligible(InvalidInput):
    code = "not-eligible"

    def __init__(self, pilot: str, reasons: Sequence[str]) -> None:
        super().__init__(
            f"the person is not eligible for {pilot}: {', '.join(reasons)}",
            pilot=pilot,
            reasons=list(reasons),
        )
        self.reasons = tuple(reasons)


class ReferrerNotAllowed(InvalidInput):
    code = "referrer-not-allowed"


class InvalidDefinition(CoordinatorError):
    """A workflow definition failed validation on load; ``source`` names its file."""

    code = "invalid-definition"

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems), source=source,
                         problems=list(problems))
        self.source = source
        self.problems = tuple(problems)


class Conflict(CoordinatorError):
    code = "conflict"


class UnknownTrigger(Conflict):
    code = "unknown-trigger"

    def __init__(self, workflow: str, trigger: str) -> None:
        super().__init__(f"{workflow} has no action named {trigger!r}",
                         workflow=workflow, trigger=trigger)


class TransitionNotAllowed(Conflict):
    code = "transition-not-allowed"

    def __init__(self, trigger: str, state: str) -> None:
        super().__init__(f"action {trigger!r} is not allowed in state {state!r}",
                         trigger=trigger, state=state)


class GuardFailed(Conflict):
    code = "guard-failed"

    def __init__(self, trigger: str, state: str, failed_guards: Sequence[str]) -> None:
        super().__init__(
            f"action {trigger!r} from {state!r} refused: {', '.join(failed_guards)}",
            trigger=trigger, state=state, failed_guards=list(failed_guards),
        )
        self.failed_guards = tuple(failed_guards)


class WorkflowMismatch(Conflict):
    code = "workflow-mismatch"


class ConcurrentUpdate(Conflict):
    """Another writer changed the case first (optimistic lock lost)."""

    code = "concurrent-update"

    def __init__(self, what: str = "the case") -> None:
        super().__init__(f"{what} was changed by someone else; reload and try again")


class StaleVersion(ConcurrentUpdate):
    """The caller's expected version (If-Match) is not the current one."""

    code = "stale-version"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"the case (expected version {expected}, current {actual})")
        self.expected = expected
        self.actual = actual


class IdempotencyInFlight(Conflict):
    """A request with this idempotency key is still being processed (retry later)."""

    code = "idempotency-in-flight"


class IdempotencyKeyReused(InvalidInput):
    """The idempotency key was used before with a different request body."""

    code = "idempotency-key-reused"


class AlreadyRecorded(Conflict):
    code = "already-recorded"


class AlreadyMember(Conflict):
    code = "already-member"


class MigrationBlocked(Conflict):
    code = "migration-blocked"


class MeetingNotFound(NotFound):
    code = "meeting-not-found"

    def __init__(self, meeting_id: object) -> None:
        super().__init__(f"meeting {meeting_id} was not found", meeting_id=str(meeting_id))


class MeetingClosed(Conflict):
    """The meeting was already held or cancelled; it cannot be changed any more."""

    code = "meeting-closed"


class ReminderNotFound(NotFound):
    code = "reminder-not-found"

    def __init__(self, reminder_id: object) -> None:
        super().__init__(f"reminder {reminder_id} was not found", reminder_id=str(reminder_id))
class ConsentRequired(PermissionDenied):
    """No live consent covers the purpose, data category and audience (HTTP 403)."""

    code = "consent-required"


class EmergencyAccessRefused(PermissionDenied):
    """Emergency access is for health roles only, never for Nav roles (HTTP 403)."""

    code = "emergency-access-refused"


class KeyUnavailable(CoordinatorError):
    """A data key cannot be unwrapped: its key-encryption key is unknown or retired, the
    wrapped blob was altered, or the context does not match. The message names the key
    id, never key material."""

    code = "key-unavailable"


class DecryptionFailed(CoordinatorError):
    """A ciphertext did not authenticate: altered, or bound to another case, document,
    audience or version."""

    code = "decryption-failed"


class DocumentNotFound(NotFound):
    code = "document-not-found"

    def __init__(self, document_id: object) -> None:
        super().__init__(f"document {document_id} was not found",
                         document_id=str(document_id))


class NotShared(PermissionDenied):
    """The document belongs to the other side and is not shared with the reader's party
    (HTTP 403)."""

    code = "document-not-shared"


class CaseErased(CoordinatorError):
    """The case's data keys were destroyed (crypto-shredding): its documents can never be
    read again (HTTP 410)."""

    code = "case-erased"

    def __init__(self, case_id: object) -> None:
        super().__init__(f"the documents of case {case_id} were erased", case_id=str(case_id))
