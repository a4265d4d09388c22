"""Getting runs done: jobs (RQ or in-process), the scheduler, and notifications."""
