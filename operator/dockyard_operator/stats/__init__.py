"""Per-container resource figures from Docker's stats, one request per host per interval (stats/polling.py)."""
