"""The supervisor page's seat table in a real browser: a seat's row, the requests its
buttons send, and a click with the server's answer (the 管理 and 监控 columns' tests)."""

from __future__ import annotations

from typing import Any


def row(page: Any, user_id: int) -> Any:
    return page.locator(f"#seat-table tr[data-user-id='{user_id}']")


def requests_sent(page: Any, method: str, suffix: str) -> list[tuple[str, Any]]:
    """Every ``method`` request to a path ending in ``suffix`` the page sends: (path, body)."""
    sent: list[tuple[str, Any]] = []

    def record(req: Any) -> None:
        if req.method == method and req.url.endswith(suffix):
            sent.append((req.url.split("://", 1)[1].split("/", 1)[1], req.post_data_json))

    page.on("request", record)
    return sent


async def click_and_answer(page: Any, button: Any, method: str, suffix: str) -> tuple[int, dict[str, Any], Any]:
    """Click ``button``; the server's status and body for the request it sends, and that request."""
    async with page.expect_response(lambda r: r.request.method == method and r.url.endswith(suffix)) as got:
        await button.click()
    response = await got.value
    return response.status, await response.json(), response.request


def answer_next_dialog(page: Any, questions: list[str], *, accept: bool) -> None:
    """The page's next confirm() is noted in ``questions`` and accepted or dismissed."""

    async def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    page.once("dialog", answer)
