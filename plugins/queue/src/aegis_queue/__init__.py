"""Aegis Queue: named work queues — a fresh worker per task, FIFO, max_parallel, durable, callbacks."""
