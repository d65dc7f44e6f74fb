"""Shared test helpers (importable from any test module: ``from support import ...``)."""

from hotline.config import PROJECT_ROOT

TEST_PASSWORD = "correct-horse-battery"
REGISTRY_FILE = PROJECT_ROOT / "config" / "hotlines.yaml"


def three_mistakes() -> str:
    """The shipped registry with three different mistakes: an unknown mode, a
    duplicate number and a sub-centre without a dial target."""
    text = REGISTRY_FILE.read_text(encoding="utf-8")
    text = text.replace("    mode: merged\n", "    mode: mergd\n", 1)
    text = text.replace('number: "12336"', 'number: "12349"', 1)
    text = text.replace("    dial_target: PJSIP/12366@subcenter-tax\n", "", 1)
    return text
