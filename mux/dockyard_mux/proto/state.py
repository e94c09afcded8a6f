"""Stream states and the one table of legal transitions.

A (state, input) pair that is not in TRANSITIONS is a protocol error: a RemoteProtocolError for RECV_* inputs,
a LocalProtocolError for SEND_* inputs. CLOSED and RESET streams are forgotten by the connection except while
a CLOSED stream still holds unread bytes; frames for forgotten streams are ignored, because they may have been
in flight when we closed (hashicorp/yamux behaves the same way).
"""

from __future__ import annotations

import enum
from typing import Final


class StreamState(enum.Enum):
    SYN_SENT = "syn-sent"  # we opened it; no ACK yet (we may already send data)
    SYN_RECEIVED = "syn-received"  # the peer opened it; our ACK not queued yet
    ESTABLISHED = "established"
    LOCAL_CLOSED = "local-closed"  # we sent FIN; the peer may still send
    REMOTE_CLOSED = "remote-closed"  # the peer sent FIN; we may still send
    CLOSED = "closed"  # FIN both ways
    RESET = "reset"


class StreamInput(enum.Enum):
    RECV_ACK = "recv-ack"
    RECV_DATA = "recv-data"
    RECV_WINDOW_UPDATE = "recv-window-update"
    RECV_FIN = "recv-fin"
    RECV_RST = "recv-rst"
    SEND_ACK = "send-ack"
    SEND_DATA = "send-data"
    SEND_FIN = "send-fin"
    SEND_RST = "send-rst"


_S = StreamState
_I = StreamInput

_LIVE: Final = (_S.SYN_SENT, _S.SYN_RECEIVED, _S.ESTABLISHED, _S.LOCAL_CLOSED, _S.REMOTE_CLOSED)

TRANSITIONS: Final[dict[tuple[StreamState, StreamInput], StreamState]] = {
    # The peer acknowledges a stream we opened. A repeated ACK is harmless and tolerated (yamux does too); an
    # ACK on a stream the peer opened itself is not in the table.
    (_S.SYN_SENT, _I.RECV_ACK): _S.ESTABLISHED,
    (_S.ESTABLISHED, _I.RECV_ACK): _S.ESTABLISHED,
    (_S.LOCAL_CLOSED, _I.RECV_ACK): _S.LOCAL_CLOSED,
    (_S.REMOTE_CLOSED, _I.RECV_ACK): _S.REMOTE_CLOSED,
    (_S.CLOSED, _I.RECV_ACK): _S.CLOSED,
    # Data may arrive before the ACK (the spec allows sending before the handshake completes).
    (_S.SYN_SENT, _I.RECV_DATA): _S.SYN_SENT,
    (_S.SYN_RECEIVED, _I.RECV_DATA): _S.SYN_RECEIVED,
    (_S.ESTABLISHED, _I.RECV_DATA): _S.ESTABLISHED,
    (_S.LOCAL_CLOSED, _I.RECV_DATA): _S.LOCAL_CLOSED,
    # Window updates keep coming after FINs: a peer that already closed still reads what we send and
    # re-grants.
    (_S.SYN_SENT, _I.RECV_WINDOW_UPDATE): _S.SYN_SENT,
    (_S.SYN_RECEIVED, _I.RECV_WINDOW_UPDATE): _S.SYN_RECEIVED,
    (_S.ESTABLISHED, _I.RECV_WINDOW_UPDATE): _S.ESTABLISHED,
    (_S.LOCAL_CLOSED, _I.RECV_WINDOW_UPDATE): _S.LOCAL_CLOSED,
    (_S.REMOTE_CLOSED, _I.RECV_WINDOW_UPDATE): _S.REMOTE_CLOSED,
    (_S.CLOSED, _I.RECV_WINDOW_UPDATE): _S.CLOSED,
    # FIN: the peer will send no more. A second FIN is a protocol error (as in yamux).
    (_S.SYN_SENT, _I.RECV_FIN): _S.REMOTE_CLOSED,
    (_S.SYN_RECEIVED, _I.RECV_FIN): _S.REMOTE_CLOSED,
    (_S.ESTABLISHED, _I.RECV_FIN): _S.REMOTE_CLOSED,
    (_S.LOCAL_CLOSED, _I.RECV_FIN): _S.CLOSED,
    # RST from any live state (or while unread bytes of a closed stream are still held).
    **{(state, _I.RECV_RST): _S.RESET for state in (*_LIVE, _S.CLOSED)},
    # Our commands.
    (_S.SYN_RECEIVED, _I.SEND_ACK): _S.ESTABLISHED,
    (_S.REMOTE_CLOSED, _I.SEND_ACK): _S.REMOTE_CLOSED,  # the peer's SYN carried FIN too
    (_S.SYN_SENT, _I.SEND_DATA): _S.SYN_SENT,
    (_S.SYN_RECEIVED, _I.SEND_DATA): _S.SYN_RECEIVED,
    (_S.ESTABLISHED, _I.SEND_DATA): _S.ESTABLISHED,
    (_S.REMOTE_CLOSED, _I.SEND_DATA): _S.REMOTE_CLOSED,
    (_S.SYN_SENT, _I.SEND_FIN): _S.LOCAL_CLOSED,
    (_S.SYN_RECEIVED, _I.SEND_FIN): _S.LOCAL_CLOSED,
    (_S.ESTABLISHED, _I.SEND_FIN): _S.LOCAL_CLOSED,
    (_S.REMOTE_CLOSED, _I.SEND_FIN): _S.CLOSED,
    **{(state, _I.SEND_RST): _S.RESET for state in (*_LIVE, _S.CLOSED)},
}

TERMINAL_STATES: Final = frozenset({StreamState.CLOSED, StreamState.RESET})


def next_state(state: StreamState, event: StreamInput) -> StreamState | None:
    """The state after ``event``, or None when the table has no such transition (a protocol error)."""
    return TRANSITIONS.get((state, event))
