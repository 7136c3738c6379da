"""What every plug-in registry shares: a name -> plug-in mapping whose modules are imported on first read
(`Registry`), and importing every module of a package once (`import_submodules`), so a plug-in that
registers itself with a decorator is one new file."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

_imported: set[str] = set()


def import_submodules(package: str, *, order: Callable[[str], Any] | None = None, skip: tuple[str, ...] = ()) -> None:
    """Import every public module of `package` but `skip` (sorted, then by `order`), once per process.

    Marked before importing: a module that registers itself may read the registry that called this.
    """
    if package in _imported:
        return
    _imported.add(package)
    try:
        pkg = importlib.import_module(package)
        names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name not in skip and not m.name.startswith("_"))
        if order is not None:
            names.sort(key=order)
        for name in names:
            importlib.import_module(f"{package}.{name}")
    except BaseException:
        _imported.discard(package)
        raise


T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name no plug-in registered; the message lists the valid ones."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(MutableMapping[str, T]):
    """name -> plug-in, a dict whose plug-in modules are imported on first read.

    `plugins` imports the modules that register themselves (each a decorator next to its
    implementation), so a new one is a new file; nothing heavy is imported before a name is asked for.
    """

    def __init__(self, kind: str, plugins: Callable[[], None] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._plugins = plugins
        self._loaded = plugins is None

    def load(self) -> None:
        if not self._loaded:
            self._loaded = True  # set first: the plug-ins register into this registry while importing
            try:
                self._plugins()
            except BaseException:
                self._loaded = False
                raise

    def __getitem__(self, name: str) -> T:
        self.load()
        if name not in self._items:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid: {', '.join(self._items)}")
        return self._items[name]

    def registered(self, name: str) -> T | None:
        """What is registered under `name` so far, without importing the plug-ins (for registering ones)."""
        return self._items.get(name)

    def __setitem__(self, name: str, value: T) -> None:
        self._items[name] = value

    def __delitem__(self, name: str) -> None:
        del self._items[name]

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(self._items)

    def __len__(self) -> int:
        self.load()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self)})"
