"""Errors of the work queue."""

from dockyard_operator.errors import DockyardError


class WorkQueueError(DockyardError):
    """Base class of work queue errors."""


class QueueShutDownError(WorkQueueError):
    """get() on a queue that is shut down (and, when draining, empty): the worker should exit."""


class NotProcessingError(WorkQueueError, KeyError):
    """done() for a key that get() did not hand out (or that is already done): a bug in the caller."""


class InvalidQueueConfigError(WorkQueueError, ValueError):
    """A QueueConfig value out of range."""
