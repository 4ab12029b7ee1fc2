"""Agent identities moved between machines (passphrase-sealed bundles)."""

from __future__ import annotations

import asyncio
import threading
from ctypes import byref, c_uint64, create_string_buffer
from types import TracebackType

from . import _lib, _util
from ._lib import check, lib
from .errors import Closed, InvalidHandle

__all__ = ["Identity"]


class Identity:
    """An agent key opened from a bundle made by :meth:`x0x.Agent.export_identity`.

    Use it with ``Agent.create(identity=...)`` or :meth:`save`; release it
    with :meth:`close` (idempotent; agents created from it keep their key).
    """

    def __init__(self, _token: object, handle: int, agent_id: str) -> None:
        if _token is not _TOKEN:
            raise TypeError("use 'await Identity.import_bundle(bundle, passphrase)'")
        self._handle = handle
        self._agent_id = agent_id
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    async def import_bundle(cls, bundle: bytes | bytearray | memoryview, passphrase: str | bytes) -> Identity:
        """Opens ``bundle`` with ``passphrase`` (~0.25 s).

        Raises :class:`x0x.WrongPassphrase`, :class:`x0x.Corrupt` (damaged
        or unsupported bundle), ValueError (empty passphrase, bundle over 64 KiB).
        """
        raw = _util.payload(bundle, "bundle", _lib.MAX_BUNDLE)
        if not raw:
            raise ValueError("bundle must not be empty")
        pp = _util.passphrase(passphrase)
        if not pp:
            raise ValueError("passphrase must not be empty")

        def do() -> tuple[int, str]:
            out = c_uint64(0)
            check(lib.x0x_identity_import(raw, len(raw), pp, len(pp), byref(out)))
            h = int(out.value)
            aid = create_string_buffer(_lib.ID_SIZE)
            rc = lib.x0x_identity_agent_id(h, aid)
            if rc != 0:
                lib.x0x_identity_destroy(h)
                check(rc)
            return h, aid.raw.hex()

        handle, agent_id = await asyncio.get_running_loop().run_in_executor(None, do)
        return cls(_TOKEN, handle, agent_id)

    @property
    def agent_id(self) -> str:
        """The agent ID (hex) of this key."""
        return self._agent_id

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    async def save(self, data_dir: _util.StrPath, passphrase: str | bytes | None = None) -> None:
        """Makes this key the agent key of ``data_dir`` (created if needed), replacing agent.key atomically.

        ``passphrase`` seals it (None: sealed with the machine's local secret
        only). Raises :class:`x0x.X0xIOError`, :class:`x0x.WrongPassphrase`,
        :class:`x0x.Closed`.
        """
        cdir = _util.path_string(data_dir, "data_dir")
        pp = b"" if passphrase is None else _util.passphrase(passphrase)
        h = self._live_handle()

        def do() -> None:
            check(lib.x0x_identity_save(h, cdir, pp or None, len(pp)))

        try:
            await asyncio.get_running_loop().run_in_executor(None, do)
        except InvalidHandle as exc:
            raise Closed("save: the identity is closed") from exc

    def close(self) -> None:
        """Releases the key handle (fast; idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        lib.x0x_identity_destroy(self._handle)

    def _live_handle(self) -> int:
        if self._closed:
            raise Closed("the identity is closed")
        return self._handle

    def __enter__(self) -> Identity:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<x0x.Identity {self._agent_id[:16]}…{' closed' if self._closed else ''}>"


_TOKEN = object()
