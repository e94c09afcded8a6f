"""Conditions bookkeeping: lastTransitionTime moves only with the status, and re-setting is a no-op."""

from __future__ import annotations

import datetime

import pytest

from dockyard_operator.api.common import Condition, ConditionStatus
from dockyard_operator.api.dockercontainer import DockerContainerStatus
from dockyard_operator.runtime.conditions import (
    MAX_MESSAGE,
    Conditions,
    ConditionUpdate,
    InvalidConditionError,
    find_condition,
    format_time,
    is_true,
    remove_condition,
    set_condition,
    set_conditions,
)

T0 = datetime.datetime(2026, 11, 26, 6, 0, 0, 999_999, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def _json(conditions: list[Condition]) -> list[dict[str, object]]:
    return [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in conditions]


def test_new_conditions_get_now_with_whole_seconds_and_sorted_by_type() -> None:
    result = set_conditions(
        [],
        [
            ConditionUpdate("Ready", FALSE, "Creating", "creating the container"),
            ConditionUpdate("Drifted", FALSE, "InSync"),
        ],
        observed_generation=3,
        now=T0,
    )
    assert _json(result) == [
        {
            "type": "Drifted",
            "status": "False",
            "reason": "InSync",
            "message": "",
            "lastTransitionTime": "2026-11-26T06:00:00Z",
            "observedGeneration": 3,
        },
        {
            "type": "Ready",
            "status": "False",
            "reason": "Creating",
            "message": "creating the container",
            "lastTransitionTime": "2026-11-26T06:00:00Z",
            "observedGeneration": 3,
        },
    ]
    # What we produce is what the API's own model accepts, and it survives a round trip unchanged.
    stored = DockerContainerStatus.model_validate({"conditions": _json(result)})
    assert stored.conditions == result


def test_same_status_keeps_the_transition_time_but_updates_the_rest() -> None:
    first = set_condition([], ConditionUpdate("Ready", FALSE, "Creating"), observed_generation=1, now=T0)
    second = set_condition(
        first, ConditionUpdate("Ready", FALSE, "Pulling", "pulling x"), observed_generation=2, now=T1
    )
    assert _json(second) == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Pulling",
            "message": "pulling x",
            "lastTransitionTime": "2026-11-26T06:00:00Z",
            "observedGeneration": 2,
        }
    ]


def test_a_status_change_moves_the_transition_time() -> None:
    first = set_condition([], ConditionUpdate("Ready", FALSE, "Creating"), observed_generation=1, now=T0)
    second = set_condition(first, ConditionUpdate("Ready", TRUE, "Running"), observed_generation=1, now=T1)
    assert format_time(second[0].last_transition_time) == "2026-11-26T06:05:00Z"
    third = set_condition(second, ConditionUpdate("Ready", UNKNOWN, "HostUnreachable"), observed_generation=1, now=T1)
    assert third[0].status is UNKNOWN


def test_setting_the_same_conditions_again_is_a_no_op() -> None:
    """Status is patched only when it changed: an unchanged reconcile must produce an equal list."""
    updates = [ConditionUpdate("Ready", TRUE, "Running"), ConditionUpdate("Healthy", TRUE, "Healthy")]
    first = set_conditions([], updates, observed_generation=4, now=T0)
    again = set_conditions(first, list(reversed(updates)), observed_generation=4, now=T1)
    assert again == first


def test_conditions_as_read_back_from_the_api_server() -> None:
    """Input as the API server returns it (any order); untouched conditions are kept as they are."""
    stored = DockerContainerStatus.model_validate(
        {
            "conditions": [
                {
                    "type": "Scheduled",
                    "status": "True",
                    "reason": "HostRef",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                },
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Running",
                    "message": "",
                    "lastTransitionTime": "2026-02-02T00:00:00Z",
                },
            ]
        }
    ).conditions
    result = set_condition(stored, ConditionUpdate("Ready", TRUE, "Running"), observed_generation=None, now=T1)
    assert [c.type for c in result] == ["Ready", "Scheduled"]
    assert format_time(result[0].last_transition_time) == "2026-02-02T00:00:00Z"
    assert result[0].observed_generation is None
    assert result[1] == stored[0]


def test_long_messages_are_cut_to_the_api_limit() -> None:
    result = set_condition([], ConditionUpdate("Ready", FALSE, "Failed", "x" * 50_000), observed_generation=1, now=T0)
    assert len(result[0].message) == MAX_MESSAGE


@pytest.mark.parametrize(
    ("type_", "status", "reason"),
    [
        ("Ready", "True", "not camel case"),
        ("Ready", "True", ""),
        ("Ready", "Maybe", "Running"),
        ("", "True", "Running"),
        ("has space", "True", "Running"),
    ],
)
def test_invalid_conditions_are_refused_early(type_: str, status: str, reason: str) -> None:
    with pytest.raises((InvalidConditionError, ValueError)):
        ConditionUpdate(type_, status, reason)  # type: ignore[arg-type]


def test_plain_strings_are_accepted_as_statuses() -> None:
    assert ConditionUpdate("Ready", "True", "Running").status is TRUE  # type: ignore[arg-type]


def test_naive_times_are_refused() -> None:
    with pytest.raises(InvalidConditionError, match="timezone-aware"):
        format_time(datetime.datetime(2026, 1, 1))  # naive on purpose
    other_zone = datetime.datetime(2026, 1, 1, 2, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert format_time(other_zone) == "2026-01-01T00:00:30Z"


def test_find_remove_and_is_true() -> None:
    conditions = set_conditions(
        [],
        [ConditionUpdate("Ready", TRUE, "Running"), ConditionUpdate("Drifted", FALSE, "InSync")],
        observed_generation=1,
        now=T0,
    )
    assert is_true(conditions, "Ready")
    assert not is_true(conditions, "Drifted")
    assert not is_true(conditions, "Healthy")
    found = find_condition(conditions, "Drifted")
    assert found is not None
    assert found.reason == "InSync"
    assert find_condition(conditions, "Healthy") is None
    assert [c.type for c in remove_condition(conditions, "Drifted")] == ["Ready"]
    assert remove_condition(conditions, "Healthy") == conditions


def test_the_working_set_records_decisions_in_order() -> None:
    working = Conditions([], generation=7, now=T0)
    working.set("Ready", "False", "Creating", "x")
    working.set("Ready", "True", "Running")
    working.set("Scheduled", TRUE, "HostRef")
    working.remove("Scheduled")
    assert working.reason("Ready") == "Running"
    assert working.status("Ready") is TRUE
    assert working.status("Scheduled") is None
    assert [c.observed_generation for c in working.result] == [7]
