"""The tunnel's Docker API adapters: the only tunnel modules that import aiodocker.

- bridging: on the server, an aiodocker client per host whose connections are mux streams to that host.
- local: on the agent, questions to the local daemon (its version, the IPs of managed containers).
"""
