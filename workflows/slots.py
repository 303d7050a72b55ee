"""Per-system caps on concurrent tasks, held across the whole fleet.

A system with ``max_concurrent_tasks: N`` in the data map has N slot rows; a task runs only
while it holds one, taken in its claim's transaction and released in the transaction that
records its result or failure. A slot whose lease ran out (its worker died) is free again. A
system without slot rows has no cap. Slots are never loaded as ORM objects: these statements
run on the session's connection.

When the data map changes a system's cap, the next plan that has a task on that system adds
the missing rows or deletes those beyond the new cap (a task holding one of those finishes;
no task takes it again).
"""

from __future__ import annotations

from datetime import datetime
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dsar.db.models import SystemSlot
from dsar.db.rows import fetch, send

_OF_SYSTEM = sa.select(SystemSlot.slot).where(SystemSlot.system == sa.bindparam("system"))
_FREE = (sa.select(SystemSlot.slot)  # a free slot (a lapsed lease is free), locked
         .where(SystemSlot.system == sa.bindparam("of_system"),
                sa.or_(SystemSlot.task_id.is_(None),
                       SystemSlot.task_id == sa.bindparam("holder"),
                       SystemSlot.lease_until < sa.bindparam("now")))
         .order_by(SystemSlot.slot).limit(1).with_for_update(skip_locked=True))
_TAKE = (sa.update(SystemSlot)  # bind names other than the columns', as UPDATE wants
         .where(SystemSlot.system == sa.bindparam("of_system"),
                SystemSlot.slot == _FREE.scalar_subquery())
         .values(task_id=sa.bindparam("holder"), lease_until=sa.bindparam("until"))
         .returning(SystemSlot.slot))
_SURPLUS = sa.delete(SystemSlot).where(SystemSlot.system == sa.bindparam("system"),
                                      SystemSlot.slot >= sa.bindparam("cap"))
_COUNT = (sa.select(sa.func.count()).select_from(SystemSlot)
          .where(SystemSlot.system == sa.bindparam("system")))
_RENEW = (sa.update(SystemSlot).where(SystemSlot.task_id == sa.bindparam("holder"))
          .values(lease_until=sa.bindparam("until")))
_RELEASE = (sa.update(SystemSlot).where(SystemSlot.task_id == sa.bindparam("holder"))
            .values(task_id=None, lease_until=None))


# Per state database: the cap each system's rows were last made to match by this process, in
# a transaction that committed. Caps change only with the data map, so planning looks at the
# slot rows once per system and cap, not once per request.
_ENSURED: WeakKeyDictionary[Engine, dict[str, int]] = WeakKeyDictionary()


def _ensured(session: Session) -> dict[str, int]:
    bind = session.get_bind()
    return _ENSURED.setdefault(bind if isinstance(bind, Engine) else bind.engine, {})


def ensure(session: Session, system: str, cap: int) -> None:
    """Make ``system`` have exactly ``cap`` slot rows, numbered from 0: missing rows are added,
    rows beyond a lowered cap deleted. Does nothing when this process has already done so for
    this state database and cap in a transaction that committed."""
    done = _ensured(session)
    if done.get(system) == cap:
        return
    conn = session.connection()
    conn.execute(_SURPLUS, {"system": system, "cap": cap})
    have = set(conn.scalars(_OF_SYSTEM, {"system": system}))
    for slot in range(cap):
        if slot not in have:
            try:
                with session.begin_nested():
                    session.add(SystemSlot(system=system, slot=slot))
            except IntegrityError:
                pass  # another worker made it at the same moment

    def remember(_: Session) -> None:
        done[system] = cap

    sa.event.listen(session, "after_commit", remember, once=True)


def take(session: Session, system: str, task_id: int, now: datetime, lease: datetime) -> bool:
    """Take a free slot of ``system`` for the task until ``lease``, skipping slots that
    concurrent claims hold locked, so claims on one system never queue behind each other's
    commits. True if the task may run (it holds a slot, or the system has no cap)."""
    conn = session.connection()
    values = {"of_system": system, "holder": task_id, "now": now, "until": lease}
    if fetch(session, _TAKE, values):
        return True
    if conn.scalar(_COUNT, {"system": system}):
        return False  # every slot is busy
    cap = _ensured(session).pop(system, None)
    if cap is None:
        return True  # no cap
    # The rows this process made are gone (the state database was emptied or restored):
    # make them again rather than let the system run without its cap.
    ensure(session, system, cap)
    return bool(fetch(session, _TAKE, values))


def renew(session: Session, task_id: int, lease: datetime) -> None:
    """Extend the slot the task holds, if any, to ``lease``."""
    send(session, _RENEW, {"holder": task_id, "until": lease})


def release(session: Session, task_id: int) -> None:
    """Free the slot the task holds, if any."""
    send(session, _RELEASE, {"holder": task_id})
