"""``kubetune operator run`` refuses lease timings that could let two replicas lead at once."""

import pytest

from kubetune.cli.main import main


@pytest.mark.parametrize(
    "flags",
    [
        ["--lease-renew-deadline", "15"],  # not shorter than the 15 s lease
        ["--lease-duration", "8"],  # shorter than the 10 s renew deadline
        ["--lease-retry-period", "10"],  # not shorter than the renew deadline
    ],
)
def test_lease_timings_out_of_order_are_refused_before_anything_starts(flags: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["operator", "run", "--leader-elect", *flags])
    assert "--lease-retry-period < --lease-renew-deadline < --lease-duration" in str(info.value.code)
