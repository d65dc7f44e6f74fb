"""The low findings: list paging, /healthz, spreadsheet formulas, the feed WebSocket."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp import WSServerHandshakeError

from hotline.feed.changes import mask_data
from hotline.reports.export import to_csv, to_xlsx

LISTS = ("/api/v1/calls", "/api/v1/tickets", "/api/v1/audit", "/api/v1/upstream/dead-letters",
         "/api/v1/ingest/quarantine", "/api/v1/feed")


@pytest.mark.parametrize("value", ["-1", "0", "99999999999999999999", "ten"])
async def test_a_bad_limit_or_offset_is_a_400_naming_it_on_every_list(api_as, value: str) -> None:
    admin = await api_as("admin", "supervisor")
    for path in LISTS:
        resp = await admin.get(f"{path}?limit={value}")
        assert resp.status == 400, (path, resp.status, await resp.text())
        assert (await resp.json())["error"]["field"] == "limit"
    resp = await admin.get("/api/v1/calls?offset=-5")
    assert resp.status == 400 and (await resp.json())["error"]["field"] == "offset"


async def test_healthz_does_not_show_the_database_error_text(client, runtime, monkeypatch) -> None:
    class Refusing:
        async def fetchval(self, *args: object) -> None:
            raise asyncpg.InvalidPasswordError('password authentication failed for user "hotline_secret_role"')

    class Db:
        pool = Refusing()
        url = runtime.db.url

    monkeypatch.setattr(runtime, "db", Db())
    resp = await client.get("/healthz")
    assert resp.status == 503
    text = await resp.text()
    assert "hotline_secret_role" not in text and "InvalidPassword" not in text
    assert (await resp.json())["status"] == "unavailable"


def test_exports_neutralise_cells_that_spreadsheets_would_run_as_formulas() -> None:
    rows = [{"key": "=HYPERLINK(\"http://evil.example\",\"x\")", "label": "+1+1", "offered": 3},
            {"key": "-2+3", "label": "@SUM(A1)", "offered": -4}]
    text = to_csv(rows).decode("utf-8-sig")
    for cell in ('=HYPERLINK', '+1+1', '-2+3', '@SUM'):
        assert f"\n{cell}" not in text and f",{cell}" not in text and f'"{cell}' not in text, cell
    assert ",-4" in text  # numbers stay numbers
    from io import BytesIO

    from openpyxl import load_workbook

    ws = load_workbook(BytesIO(to_xlsx(rows, title="t"))).active
    values = [c.value for row in ws.iter_rows(min_row=2) for c in row]
    assert not any(isinstance(v, str) and v[:1] in "=+-@" for v in values), values
    assert ws.cell(row=2, column=1).data_type == "s" and -4 in values


def test_the_feed_masks_personal_fields_at_any_depth() -> None:
    data = {"caller_number": "13812345678",
            "ticket": {"caller_number": "13912345678", "caller_name": "张三丰",
                       "contacts": [{"contact_number": "13712345678"}]}}
    text = repr(mask_data(data))
    for number in ("13812345678", "13912345678", "13712345678", "张三丰"):
        assert number not in text


async def test_the_feed_websocket_refuses_another_sites_origin(api_as) -> None:
    boss = await api_as("supervisor")
    with pytest.raises(WSServerHandshakeError) as err:
        await boss.client.ws_connect("/api/v1/feed", headers={"Origin": "https://evil.example"})
    assert err.value.status == 403
    ws = await boss.client.ws_connect("/api/v1/feed")
    assert (await ws.receive_json())["type"] == "hello"
    await ws.close()
