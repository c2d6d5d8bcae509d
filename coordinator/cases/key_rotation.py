"""Key rotation (pure, over the unit of work and the two crypto ports).

``rotate(reencrypt=False)``: the KeyProvider makes a new KEK current, then every data key
is unwrapped and wrapped again under it, ``batch`` keys per transaction. Each key's
update is conditional on the KEK it was read under, so a concurrent change is never
overwritten (the key is picked up again). Old KEKs keep unwrapping until an operator
retires them (``retire``), which is refused while any key still needs them.

``rotate(reencrypt=True)`` does that, then gives every (case, audience) a new data key
version and re-seals its documents under it, ``batch`` per transaction. Each document's
update is conditional on its ``row_version`` (optimistic), so a live write made meanwhile
wins and the document is simply re-sealed on the next pass if it is still on an old key.
Superseded data keys are destroyed once no document is sealed under them.

A run is recorded in ``key_rotations``; a rerun after a crash resumes the unfinished run
(no second KEK, no second data key for groups already done) and is otherwise harmless, so
the command is safe to repeat. The finished run is one audit event in the system chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from uuid import UUID

from coordinator.cases import auditing
from coordinator.cases.document_model import DataKey, Rotation
from coordinator.cases.documents import Envelope
from coordinator.cases.model import Actor
from coordinator.errors import ConcurrentUpdate, Conflict, InvalidInput
from coordinator.ports import Clock, UnitOfWork

REWRAP, REENCRYPT = "rewrap", "reencrypt"
KEYS_ROTATED = "keys_rotated"
KEK_RETIRED = "kek_retired"
MAX_PASSES = 5          # re-encryption passes over documents live writes left behind

# progress(phase, done, total): phases "rewrap", "data_keys", "documents"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RotationReport:
    run: UUID
    kind: str
    kek_id: str
    resumed: bool
    rewrapped: int = 0
    data_keys: int = 0
    documents: int = 0
    destroyed: int = 0
    old_keks: tuple[str, ...] = ()


class KeyRotation:
    def __init__(self, uow: Callable[[], UnitOfWork], clock: Clock, envelope: Envelope,
                 actor: Actor, *, batch: int = 100, progress: Progress | None = None,
                 between_batches: Callable[[], None] | None = None) -> None:
        if not 1 <= batch <= 10_000:
            raise InvalidInput("batch must be between 1 and 10000", field="batch")
        self.uow = uow
        self.clock = clock
        self.envelope = envelope
        self.keys = envelope.keys
        self.actor = actor
        self.batch = batch
        self.progress = progress or (lambda phase, done, total: None)
        self.between = between_batches or (lambda: None)

    def rotate(self, *, reencrypt: bool) -> RotationReport:
        with self.uow() as uow:
            run = uow.data_keys.open_rotation(REENCRYPT) or uow.data_keys.open_rotation(REWRAP)
            old = tuple(sorted(uow.data_keys.kek_ids()))
        resumed = run is not None
        if run is None:
            self.keys.rotate()          # before the run is recorded: a crash here costs
            run = Rotation(uuid.uuid4(), REENCRYPT if reencrypt else REWRAP,  # one unused KEK
                           self.clock.now())
            with self.uow() as uow:
                uow.data_keys.start_rotation(run)
                uow.commit()
        kek = self.keys.current_kek()
        report = RotationReport(run.id, run.kind, kek, resumed,
                                old_keks=tuple(k for k in old if k != kek))
        report = replace(report, rewrapped=self._rewrap(kek))
        if run.kind == REENCRYPT:
            made = self._new_data_keys(run)
            docs, destroyed = self._reseal()
            report = replace(report, data_keys=made, documents=docs, destroyed=destroyed)
        with self.uow() as uow:
            uow.data_keys.finish_rotation(run.id, self.clock.now())
            uow.audit.append(auditing.access(
                KEYS_ROTATED, self.actor, self.clock.now(), case_id=None,
                data={"run": str(run.id), "kind": run.kind, "kek": kek, "resumed": resumed,
                      "rewrapped": report.rewrapped, "data_keys": report.data_keys,
                      "documents": report.documents, "destroyed": report.destroyed}))
            uow.commit()
        return report

    def _rewrap(self, kek: str) -> int:
        """Sweeps in key order (keyset paging, so a batch never rescans finished keys);
        another sweep picks up keys a concurrent change made us skip."""
        with self.uow() as uow:
            total = uow.data_keys.count_not_under(kek)
        done = 0
        self.progress("rewrap", 0, total)
        while True:
            swept = self._rewrap_sweep(kek, total, done)
            done += swept
            with self.uow() as uow:
                if not swept or uow.data_keys.count_not_under(kek) == 0:
                    return done

    def _rewrap_sweep(self, kek: str, total: int, before: int) -> int:
        done = 0
        cursor: tuple[UUID, str, int] | None = None
        while True:
            with self.uow() as uow:
                page = uow.data_keys.not_under(kek, limit=self.batch, after=cursor)
                if not page:
                    return done
                rewrapped = []
                for key in page:
                    wrapped = self.keys.wrap(self.envelope.unwrap(key), key.context)
                    if wrapped.kek_id != kek:
                        raise Conflict(f"the current key-encryption key changed to "
                                       f"{wrapped.kek_id} during the rotation; run it again")
                    rewrapped.append((key, wrapped.kek_id, wrapped.blob))
                done += uow.data_keys.rewrap(rewrapped)
                uow.commit()
            last = page[-1]
            cursor = (last.case_id, last.audience, last.key_version)
            self.progress("rewrap", min(before + done, total), total)
            self.between()

    def _new_data_keys(self, run: Rotation) -> int:
        with self.uow() as uow:
            total = uow.data_keys.count_created_before(run.started_at)
        made = 0
        cursor: tuple[UUID, str] | None = None
        self.progress("data_keys", 0, total)
        while True:
            now = self.clock.now()
            with self.uow() as uow:
                page = uow.data_keys.created_before(run.started_at, limit=self.batch,
                                                    after=cursor)
                if not page:
                    return made
                for key in page:
                    made += self.envelope.new_key(uow, key.case_id, key.audience,
                                                  key.key_version + 1, now) is not None
                uow.commit()
            cursor = (page[-1].case_id, page[-1].audience)
            self.progress("data_keys", min(made, total), total)
            self.between()

    def _reseal(self) -> tuple[int, int]:
        """Re-seal documents on superseded keys, then destroy the keys no document uses."""
        resealed = destroyed = 0
        for _ in range(MAX_PASSES):
            with self.uow() as uow:
                total = uow.documents.count_stale()
            done = 0
            cursor: UUID | None = None
            self.progress("documents", 0, total)
            while True:
                try:
                    moved, seen, last = self._reseal_batch(cursor)
                except ConcurrentUpdate:
                    continue            # a live write won; its row is read again
                if not seen:
                    break
                resealed += moved
                done += seen
                cursor = last
                self.progress("documents", min(done, total), total)
                self.between()
            destroyed += self._destroy_superseded()
            with self.uow() as uow:
                if uow.documents.count_stale() == 0:
                    break
        return resealed, destroyed

    def _reseal_batch(self, after: UUID | None) -> tuple[int, int, UUID | None]:
        """Re-seal the next batch of stale documents (after ``after``): (re-sealed,
        seen, the last id seen)."""
        now = self.clock.now()
        with self.uow() as uow:
            page = uow.documents.stale(limit=self.batch, after=after)
            stored = {(x.case_id, x.audience, x.key_version): x     # one query for the
                      for x in uow.data_keys.for_cases(d.case_id for d in page)}  # batch
            newest_of: dict[tuple[UUID, str], DataKey] = {}
            for x in stored.values():
                group = (x.case_id, x.audience)
                if group not in newest_of or x.key_version > newest_of[group].key_version:
                    newest_of[group] = x
            newest: dict[tuple[UUID, str], tuple[DataKey, bytes]] = {}
            resealed = []
            for doc in page:
                group = (doc.case_id, doc.audience)
                if group not in newest:
                    key = newest_of.get(group)
                    newest[group] = (key, self.envelope.unwrap(key)) if key is not None \
                        else self.envelope.current(uow, doc.case_id, doc.audience, now)
                old = stored.get((doc.case_id, doc.audience, doc.key_version))
                if old is not None:
                    self.envelope.unwrap(old)           # cached for the open just below
                new = self.envelope.seal(uow, doc, self.envelope.open(uow, doc),
                                         audience=doc.audience, revision=doc.revision,
                                         now=now, key=newest[group])
                resealed.append(replace(new, row_version=doc.row_version + 1))
            moved = uow.documents.reseal(resealed)    # rows changed meanwhile are skipped
            uow.commit()
        return moved, len(page), page[-1].id if page else after

    def _destroy_superseded(self) -> int:
        destroyed = 0
        while True:
            with self.uow() as uow:
                gone = sum(uow.data_keys.destroy(k.case_id, k.audience, below=k.key_version + 1)
                           for k in uow.data_keys.superseded(limit=self.batch))
                uow.commit()
            if not gone:
                return destroyed
            destroyed += gone

    def retire(self, kek_id: str) -> None:
        """Forget an old KEK. Raises: InvalidInput (the current one), Conflict (keys still
        wrapped under it)."""
        with self.uow() as uow:
            if kek_id in uow.data_keys.kek_ids():
                raise Conflict(f"data keys are still wrapped under {kek_id}; run "
                               f"'coordinator keys rotate' first", kek_id=kek_id)
            self.keys.retire(kek_id)
            uow.audit.append(auditing.access(KEK_RETIRED, self.actor, self.clock.now(),
                                             case_id=None, data={"kek": kek_id}))
            uow.commit()
