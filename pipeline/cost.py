"""The money side of a model call: the hold reserved before it, settled or released after."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pipeline.errors import PermanentError, TransientError
from pipeline.models import Usage
from pipeline.pricing import estimate_cost

if TYPE_CHECKING:
    from pipeline.providers import ChatSetup, Reply

HOLD_MARGIN_S = 120


class OverBudget(TransientError):
    """The tier's daily budget cannot cover the next call; the task waits for budget."""

    def __init__(self, tier: int, held: float, budget: float) -> None:
        super().__init__(
            f"tier {tier} budget: {held:.4f} spent or reserved of {budget:.4f}",
            public=f"tier {tier} has spent or reserved ${held:.4f} of its ${budget:.4f} budget",
        )
        self.tier, self.held, self.budget = tier, held, budget


class TaskCostCapped(PermanentError):
    """The task's own spend cap (max_task_cost) cannot cover the next call: it stops."""

    def __init__(self, spent: float, cap: float) -> None:
        reason = (
            f"this task has spent ${spent:.4f}; the next model call could pass its "
            f"max_task_cost of ${cap:.2f}"
        )
        super().__init__(reason, public=reason)
        self.spent, self.cap = spent, cap


@dataclass(frozen=True)
class Hold:
    """Money set aside for one model call before it is made."""

    id: str
    tier: int
    task_id: str
    day: str
    amount: float
    ttl_s: int  # a worker killed mid-call leaves its hold to expire, not to leak


class SpendLedger(Protocol):
    def reserve_spend(self, hold: Hold, *, budget: float | None, task_cap: float | None) -> None:
        """Raises OverBudget or TaskCostCapped when the hold does not fit."""

    def settle_spend(self, hold: Hold, actual: float) -> None: ...
    def release_spend(self, hold: Hold) -> None: ...
    def task_spent(self, task_id: str) -> float: ...


class MeteredChat(Protocol):
    setup: ChatSetup

    def request_chars(self) -> int: ...
    def send(self) -> Reply: ...


@dataclass
class Meter:
    """Reserves each call's cost before it is made and settles it with the real usage after."""

    ledger: SpendLedger
    task_id: str
    tier: int
    budget: float | None
    task_cap: float | None
    usage: list[Usage] = field(default_factory=list)

    def send(self, chat: MeteredChat) -> Reply:
        setup = chat.setup
        estimate = estimate_cost(
            setup.price_for(setup.model), chat.request_chars(), setup.max_tokens
        )
        if estimate <= 0:  # a model without a price (a local server) costs nothing
            reply = chat.send()
            self.usage.append(reply.usage)
            return reply
        hold = Hold(
            id=uuid.uuid4().hex,
            tier=self.tier,
            task_id=self.task_id,
            day=time.strftime("%Y-%m-%d", time.gmtime()),
            amount=estimate,
            ttl_s=int(setup.timeout_s * 3) + HOLD_MARGIN_S,  # the SDK's own retries included
        )
        self.ledger.reserve_spend(hold, budget=self.budget, task_cap=self.task_cap)
        try:
            reply = chat.send()
        except BaseException:
            self.ledger.release_spend(hold)
            raise
        self.ledger.settle_spend(hold, reply.usage.cost_usd)
        self.usage.append(reply.usage)
        return reply

    @property
    def spent_usd(self) -> float:
        return sum(u.cost_usd for u in self.usage)
