"""What an operation returns: an exit code, messages, and a table or a data object.

Operations never print. The CLI hands a Result to ``cellctl.render``, which
writes it as a table, JSON or CSV, and exits with ``code``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, overload

if TYPE_CHECKING:  # a default for a type variable needs Python 3.13's typing at run time
    from typing_extensions import TypeVar

    Row = TypeVar("Row", default=Any)
    Data = TypeVar("Data", default=Any)
else:
    from typing import TypeVar

    Row = TypeVar("Row")
    Data = TypeVar("Data")

# info: stdout in a table (what nova-manage prints); note: stderr, for people only
# (what cellctl adds that nova-manage does not print); warning, error: stderr,
# except that under nova-manage's command names errors go to stdout as nova's do.
Level = Literal["info", "note", "warning", "error"]


def plural(count: int, noun: str) -> str:
    """``1 instance``, ``0 instances``, ``2 instances``: a count said as people say it."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class Column:
    key: str  # snake_case: the JSON/CSV key
    header: str  # as nova-manage titles the column
    none_as: str = ""  # how a NULL shows in a table (nova-manage varies by command)
    secret_url: bool = False  # masked unless the user asked to see secrets
    nova_mask: bool = False  # masked exactly as nova-manage masks it (cellctl.urls.mask_like_nova)


class Rows(Sequence[dict[str, Any]]):
    """A listing's rows kept as tuples, their keys once: what 100,000 rows cost in
    memory is a tuple each. Read as a sequence of dicts (made on access)."""

    __slots__ = ("keys", "tuples")

    def __init__(self, keys: Sequence[str], tuples: list[tuple[Any, ...]]) -> None:
        self.keys = tuple(keys)
        self.tuples = tuples

    def __len__(self) -> int:
        return len(self.tuples)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [dict(zip(self.keys, row, strict=True)) for row in self.tuples[index]]
        return dict(zip(self.keys, self.tuples[index], strict=True))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        keys = self.keys
        return (dict(zip(keys, row, strict=True)) for row in self.tuples)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rows):
            return self.keys == other.keys and self.tuples == other.tuples
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass
class Table(Generic[Row]):
    """Rows for people (a table, CSV) and, unless the result has data, for scripts (JSON).

    ``Row`` is the row's type for a library caller: a TypedDict where the command
    declares one (``cellctl.results``), else any mapping of column key to value.
    """

    columns: list[Column]
    rows: list[Row] | Rows


@dataclass(frozen=True)
class Message:
    level: Level
    text: str


@dataclass
class Result(Generic[Data, Row]):
    """``Data`` and ``Row`` type ``data`` and the table's rows for a library caller;
    the commands scripts read declare theirs in ``cellctl.results``."""

    code: int = 0
    messages: list[Message] = field(default_factory=list)
    table: Table[Row] | None = None  # for people (table, CSV); for JSON too unless data is set
    data: Data | None = None  # for scripts (JSON)
    # Cells whose database could not be read: the result is incomplete.
    unreachable_cells: list[str] = field(default_factory=list)

    def info(self, text: str) -> Result:
        self.messages.append(Message("info", text))
        return self

    def note(self, text: str) -> Result:
        self.messages.append(Message("note", text))
        return self

    def warn(self, text: str) -> Result:
        self.messages.append(Message("warning", text))
        return self

    def error(self, text: str, code: int) -> Result:
        self.messages.append(Message("error", text))
        self.code = code
        return self

    def crash(self, exception: str, text: str) -> Result:
        """Where nova-manage crashes (exit 255, ``An error has occurred:`` and a
        traceback on stdout): its first line, then the exception's line alone."""
        self.error("An error has occurred:", 255)
        return self.error(f"{exception}: {text}", 255)

    def unreachable(self, cell_uuid: str, reason: str) -> Result:
        self.unreachable_cells.append(cell_uuid)
        return self.warn(reason)
