"""What a worker does with a task: route, generate, audit, publish, review."""
