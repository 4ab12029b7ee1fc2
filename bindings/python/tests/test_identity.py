"""Identity export / import / save, and an agent created from an imported identity."""

from __future__ import annotations

from pathlib import Path

import pytest

import x0x
from conftest import arun, make_agent


@arun
async def test_export_import_save_roundtrip(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        bundle = await a.export_identity("secret")
        agent_id = a.agent_id
    assert isinstance(bundle, bytes) and len(bundle) > 100
    with pytest.raises(x0x.WrongPassphrase):
        await x0x.Identity.import_bundle(bundle, "nope")
    damaged = bytearray(bundle)
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises((x0x.Corrupt, x0x.WrongPassphrase)):
        await x0x.Identity.import_bundle(bytes(damaged), "secret")
    with pytest.raises(ValueError, match="passphrase must not be empty"):
        await x0x.Identity.import_bundle(bundle, "")
    with pytest.raises(ValueError, match="65536"):
        await x0x.Identity.import_bundle(bytes(65537), "secret")
    with pytest.raises(TypeError):
        await x0x.Identity.import_bundle("text", "secret")  # type: ignore[arg-type]

    with await x0x.Identity.import_bundle(bundle, b"secret") as ident:
        assert ident.agent_id == agent_id
        # Another machine (data dir) runs the same agent, from the config...
        async with make_agent(tmp_path, "m2", identity=ident) as b:
            assert b.agent_id == agent_id
            assert b.machine_id != a.machine_id
        # ...or from the key saved into its data directory.
        await ident.save(tmp_path / "m3")
    assert ident.closed
    ident.close()  # idempotent
    with pytest.raises(x0x.Closed):
        await ident.save(tmp_path / "m4")
    with pytest.raises(x0x.Closed):
        await x0x.Agent.create(data_dir=tmp_path / "m4", identity=ident)
    async with make_agent(tmp_path, "m3") as c:
        assert c.agent_id == agent_id


@arun
async def test_export_needs_passphrase(tmp_path: Path) -> None:
    async with make_agent(tmp_path, "a") as a:
        with pytest.raises(ValueError, match="empty"):
            await a.export_identity("")
        with pytest.raises(TypeError):
            await a.export_identity(None)  # type: ignore[arg-type]
