"""The library-level functions and the C callback API (bound through ctypes but not used by Agent)."""

from __future__ import annotations

import ctypes
import os
import re
import threading
import time
from pathlib import Path

import pytest

import x0x
from x0x import _lib
from conftest import arun, make_agent


def test_abi_and_bound_functions() -> None:
    major, minor = x0x.abi_version()
    assert major == 0 and minor >= 1
    assert x0x.ABI_REQUIRED == (0, 7)
    # Every function of include/x0x.h has a prototype, and nothing else.
    header = (Path(__file__).resolve().parents[3] / "include" / "x0x.h").read_text()
    declared = set(re.findall(r"^(?:int|void|uint32_t|const char \*)\s*(x0x_[a-z0-9_]+)\(", header, re.M))
    assert declared and set(_lib.FUNCTIONS) == declared
    for name in ("x0x_agent_create", "x0x_events_drain", "x0x_publish", "x0x_subscribe", "x0x_debug_inject_events"):
        assert x0x.library_supports(name), name
    assert not x0x.library_supports("x0x_no_such_function")


def test_id_hex_helpers() -> None:
    raw = bytes(range(32))
    text = x0x.id_to_hex(raw)
    assert text == raw.hex()
    assert x0x.id_from_hex(text) == raw
    assert x0x.id_from_hex(text.upper()) == raw
    with pytest.raises(x0x.InvalidArgument):
        x0x.id_from_hex("12")
    with pytest.raises(ValueError):
        x0x.id_to_hex(b"short")
    with pytest.raises(TypeError):
        x0x.id_to_hex("00" * 32)  # type: ignore[arg-type]


def test_last_error_is_per_thread() -> None:
    rc = _lib.lib.x0x_agent_destroy(123456789)
    assert rc == x0x.InvalidHandle.CODE
    assert _lib.last_error().startswith("x0x_agent_destroy")
    seen: list[str] = []
    t = threading.Thread(target=lambda: seen.append(_lib.last_error()))
    t.start()
    t.join()
    assert seen == [""]
    with pytest.raises(x0x.InvalidHandle) as ei:
        _lib.check(_lib.lib.x0x_config_destroy(987654321))
    assert ei.value.message.startswith("x0x_config_destroy")


def test_unsupported_function_stub() -> None:
    stub = _lib._missing("x0x_future_thing")
    with pytest.raises(x0x.Unsupported) as ei:
        stub(1, 2)
    assert isinstance(ei.value, NotImplementedError) and "x0x_future_thing" in str(ei.value)


@arun
async def test_event_callback_api(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        got: list[tuple[int, int, bytes]] = []
        lock = threading.Lock()

        def on_event(handle: int, ev: "ctypes._Pointer[_lib.CEvent]", _ud: int | None) -> None:
            e = ev.contents
            with lock:
                got.append((handle, e.kind, ctypes.string_at(e.payload, e.payload_len)))

        cb = _lib.EventCallback(on_event)
        _lib.check(_lib.lib.x0x_set_event_callback(a._handle, cb, None))
        try:
            await a.debug_inject_events(5, 3)
            deadline = time.monotonic() + 10
            while len(got) < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            _lib.check(_lib.lib.x0x_set_event_callback(a._handle, _lib.EventCallback(), None))
        assert got == [(a._handle, 6, b"\xab\xab\xab")] * 5


def test_events_release_zeroed_records_is_harmless() -> None:
    recs = (_lib.CEvent * 4)()
    _lib.lib.x0x_events_release(recs, 4)
    _lib.lib.x0x_events_release(None, 0)


def test_library_loaded_from_package() -> None:
    pkg = Path(x0x.__file__).resolve().parent
    if os.environ.get("X0X_TEST_SOURCE_TREE"):
        pytest.skip("running against the source tree")
    assert x0x.library_path() == pkg / "_native" / _lib.LIBRARY_NAME
    assert "site-packages" in str(pkg)
