"""The history's readable summary of an event (views.describe_event): the lines a
reviewer reads, in their order, the extension days only on their own actions."""

from __future__ import annotations

from hotline.tickets.views import describe_event


def test_event_details_read_in_order() -> None:
    detail = {"reason": "需协调", "days": 3, "requested_days": 5, "reply": "已处理", "basis": "现场核实",
              "satisfaction": 4, "resolution": "partly", "comment": "还行", "late_return_approved_by_centre": True}
    assert describe_event("approve_extension", detail) == (
        "理由：需协调；批准延期3个工作日（申请5个）；答复：已处理；依据：现场核实；满意度：满意；"
        "解决情况：部分解决；逾期退单（经中心批准）；市民意见：还行")
    assert describe_event("request_extension", {"days": 2.5}) == "申请延期2.5个工作日"
    assert describe_event("reply", {"days": 3, "reply": ""}) == ""  # days belong to the extension actions
    assert describe_event("refuse", {"reason_name": "涉及仲裁", "answer": "请申请仲裁"}) == "原因：涉及仲裁；告知：请申请仲裁"
