"""The operator's commands: add a source (key file, fingerprint), send a signed file."""

from __future__ import annotations

import json
import os
import stat

from hotline.cli import main
from hotline.ingest.keys import fingerprint, key_dir


def _env(settings, db_url: str) -> dict[str, str]:
    return {"HOTLINE_DATABASE_URL": db_url, "HOTLINE_DATA_DIR": str(settings.data_dir)}


async def test_add_source_writes_a_private_key_file_and_only_a_fingerprint(settings, db_url, pool, monkeypatch,
                                                                         capsys) -> None:
    for k, v in _env(settings, db_url).items():
        monkeypatch.setenv(k, v)
    import asyncio

    code = await asyncio.to_thread(main, ["ingest", "add-source", "customs-sub", "--name", "海关分中心",
                                          "--line", "12360"])
    assert code == 0
    out = capsys.readouterr().out
    key = out.split("secure channel): ")[1].split()[0]
    path = key_dir(settings) / "customs-sub.key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    row = await pool.fetchrow("SELECT * FROM ingest_sources WHERE code = 'customs-sub'")
    assert row["key_fingerprint"] == fingerprint(key) and key not in json.dumps(dict(row), default=str)
    assert list(row["hotline_numbers"]) == ["12360"]


async def test_send_command_signs_batches(settings, db_url, pool, server, subcentre, tmp_path, monkeypatch,
                                          capsys) -> None:
    for k, v in _env(settings, db_url).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("HOTLINE_INGEST_KEY", subcentre.key)
    data = tmp_path / "calls.csv"
    data.write_text("source_id,version,hotline_number,started_at\n"
                    + "".join(f"f{i},1,12366,2026-11-27T09:00:00+08:00\n" for i in range(5))
                    + "bad,1,12399,2026-11-27T09:00:00+08:00\n")
    import asyncio

    url = f"http://{server.host}:{server.port}"
    code = await asyncio.to_thread(main, ["ingest", "send", str(data), "--url", url, "--source", "tax-sub",
                                          "--kind", "calls", "--batch", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "accepted=5 updated=0 duplicate=0 rejected=1" in captured.out
    assert "线路 12399 不在热线登记表中" in captured.err  # the server's reason, as the sub-centre reads it
    assert await pool.fetchval("SELECT count(*) FROM subcenter_calls") == 5
