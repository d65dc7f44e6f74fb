"""CSV and XLSX exports of report rows, with Chinese column headings."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

HEADINGS_ZH = {
    "key": "分组", "label": "名称", "offered": "呼入量（进入队列）", "answered": "接通量",
    "abandoned": "放弃量", "short_abandoned": "短时放弃（<5秒）", "answered_within_15s": "15秒内接通",
    "connection_rate": "接通率（接通/呼入）", "service_level_15s": "15秒服务水平（15秒内接通/呼入）",
    "service_level_denominator": "服务水平分母", "asa_seconds": "平均应答时长（秒）",
    "aht_seconds": "平均处理时长（秒）", "created": "受理量", "closed_directly": "直接办结",
    "direct_answer_rate": "直接答复率", "dispatched": "派单量", "returned": "退回", "extended": "延期",
    "reopened": "重办", "merged": "并单", "closed": "办结", "callback_owed": "应回访", "called_back": "已回访",
    "callback_rate": "回访率", "sign_met": "按时签收", "sign_decided": "签收已判定",
    "sign_running_overdue": "签收超期未签", "signed_on_time_rate": "按时签收率", "handle_met": "按时办结",
    "handle_decided": "办理已判定", "handle_running_overdue": "办理超期未结",
    "completed_on_time_rate": "按时办结率", "satisfaction_5": "非常满意", "satisfaction_4": "满意",
    "satisfaction_3": "基本满意", "satisfaction_2": "不满意", "satisfaction_1": "非常不满意",
    "rated": "评价数", "satisfied_rate": "满意率（非常满意+满意+基本满意）/评价数",
    "unit_code": "单位代码", "unit_name": "单位", "sign_due": "应按时签收", "resolved": "解决", "partly": "部分解决",
    "unresolved": "未解决", "evaluated": "解决情况评价数", "response_rate": "响应率（按时签收）",
    "resolution_rate": "解决率", "satisfaction_rate": "满意率", "score": "综合得分", "rank": "排名",
}


#: a text cell starting with one of these is a formula to Excel, LibreOffice and WPS
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet must show it: text that would start a formula (citizen
    text, unit names) gets a leading apostrophe so it is shown, never evaluated
    (OWASP CSV injection); numbers are left as numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    return list(rows[0].keys()) if rows else ["key", "label"]


def to_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    """UTF-8 with a BOM so that spreadsheet programs read the Chinese headings."""
    cols = columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe_cell(HEADINGS_ZH.get(c, c)) for c in cols])
    for r in rows:
        writer.writerow(["" if r.get(c) is None else safe_cell(r.get(c)) for c in cols])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: Sequence[dict[str, Any]], *, title: str, notes: Sequence[str] = ()) -> bytes:
    cols = columns(rows)
    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    ws.append([safe_cell(HEADINGS_ZH.get(c, c)) for c in cols])
    for r in rows:
        ws.append([safe_cell(r.get(c)) for c in cols])
    if notes:
        info = wb.create_sheet("口径说明")
        for line in notes:
            info.append([line])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
