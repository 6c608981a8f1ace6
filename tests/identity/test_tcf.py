"""The IAB TCF v2 string's purpose consents, decoded from its core segment."""

from __future__ import annotations

import pytest

from router.identity.tcf import DEFINED_PURPOSES, purposes_consent

#: Strings from the IAB Tech Lab's own decoder tests (iabtcf-java, TCStringV2Test), made with
#: the IAB's encoder, with the purposes the IAB decoder reads from them.
IAB_EXAMPLES = [
    ("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA", {2, 10}),
    (
        "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA"
        ".IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA",
        {3, 4, 5, 6, 7, 8, 9},
    ),
    ("COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA", {1, 2}),
]


@pytest.mark.parametrize(("tc_string", "granted"), IAB_EXAMPLES)
def test_purposes_consent_reads_the_purposes_bitfield(tc_string: str, granted: set[int]) -> None:
    """Every defined purpose is read from the core segment: its bit set is a consent."""
    purposes = purposes_consent(tc_string)
    assert purposes is not None
    assert sorted(purposes) == list(range(1, DEFINED_PURPOSES + 1))
    assert {p for p, ok in purposes.items() if ok} == granted


@pytest.mark.parametrize(
    "tc_string",
    [
        "",
        "not base64 at all!",
        "COtybn4PA_zT4KjACBENAP",  # cut before the purposes field ends
        "BOtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA",  # version 1, not 2
        ".COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA",  # no core segment first
    ],
)
def test_a_string_that_is_no_tcf_v2_string_states_no_purposes(tc_string: str) -> None:
    """Another version, a cut string or one that is not base64url reads as no purposes."""
    assert purposes_consent(tc_string) is None
