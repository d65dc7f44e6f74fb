import pytest

from hotline.phone import NumberKind, mask, normalize


@pytest.mark.parametrize(
    ("raw", "number", "kind"),
    [
        ("+8613812345678", "13812345678", NumberKind.MOBILE),
        ("008613812345678", "13812345678", NumberKind.MOBILE),
        ("8613812345678", "13812345678", NumberKind.MOBILE),
        ("013812345678", "13812345678", NumberKind.MOBILE),
        ("138 1234 5678", "13812345678", NumberKind.MOBILE),
        ("05802012345", "05802012345", NumberKind.LANDLINE),
        ("+86 580 2012345", "05802012345", NumberKind.LANDLINE),
        ("2012345", "05802012345", NumberKind.LANDLINE),
        ("12345", "12345", NumberKind.SHORT),
        ("110", "110", NumberKind.SHORT),
        ("anonymous", "", NumberKind.ANONYMOUS),
        ("", "", NumberKind.ANONYMOUS),
        ("+441234567890", "00441234567890", NumberKind.INTERNATIONAL),
        ("12ab", "", NumberKind.INVALID),
    ],
)
def test_normalize(raw: str, number: str, kind: NumberKind) -> None:
    result = normalize(raw)
    assert (result.number, result.kind) == (number, kind)


def test_mask_hides_the_middle_but_not_short_codes() -> None:
    assert mask("13812345678") == "138****5678"
    assert "2012" not in mask("05802012345")
    assert mask("12345") == "12345"
    assert mask(None) == ""
