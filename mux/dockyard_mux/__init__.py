"""dockyard_mux: a yamux-compatible stream multiplexer with a sans-IO protocol core and an asyncio adapter."""
