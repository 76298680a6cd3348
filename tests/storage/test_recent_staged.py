"""The S3 adapter's memory of recently staged chunks: a byte budget, oldest out first."""
from storage.objects.s3_bodies import RecentStaged


def test_keeps_within_its_byte_budget_and_forgets_the_oldest():
    recent = RecentStaged(capacity=10)
    recent.put("a", b"1234")
    recent.put("b", b"5678")
    recent.put("c", b"90")
    assert recent.size == 10
    recent.put("d", b"xy")  # over budget: "a" goes
    assert recent.take("a") is None and recent.size == 8
    assert recent.take("b") == b"5678" and recent.take("b") is None
    recent.put("huge", b"z" * 11)  # bigger than the whole budget: not kept
    assert recent.take("huge") is None and recent.size == 4
