"""What runs: the `veille` CLI, schedules and the digest."""
