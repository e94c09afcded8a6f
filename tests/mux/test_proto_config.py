"""Config validation: every nonsense value is rejected with a message naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from dockyard_mux import Config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("accept_backlog", 0),
        ("keepalive_interval", 0),
        ("keepalive_timeout", -1.0),
        ("connection_write_timeout", float("inf")),
        ("stream_open_timeout", float("nan")),
        ("stream_close_timeout", 0),
        ("initial_stream_window", 1024),
        ("max_stream_window", 1024),
        ("max_stream_window", 2**32),
        ("max_session_buffer", 1024),
        ("max_streams", 0),
        ("min_stream_window", 0),
        ("min_stream_window", 128 * 1024 + 1),
        ("max_data_frame", 0),
        ("max_data_frame", 512 * 1024),
        ("write_buffer_size", 0),
        ("max_outstanding_pings", 0),
        ("max_queued_control_frames", 0),
    ],
)
def test_invalid_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        Config(**{field: value})  # type: ignore[arg-type]


def test_config_is_frozen_and_keyword_only() -> None:
    config = Config(accept_backlog=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.accept_backlog = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        Config(4)  # type: ignore[call-arg]
