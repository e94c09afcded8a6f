"""A small controller runtime (client-go / controller-runtime shaped, not a framework import).

Modules: :mod:`informers` (shared, indexed caches), :mod:`controller` (for_/owns/watches, a work queue per
controller, read-your-writes), :mod:`manager` (start order, resync), :mod:`statuses` and :mod:`finalizers` (typed
writes with preconditions), :mod:`conditions`, :mod:`expectations`, :mod:`consistency`, :mod:`plans` (what a
pure decision returns). docs/architecture.md shows how a kind is added.
"""
