"""Side effects of the lifecycle: routing (durable-rules), working-time deadlines, store projection.

Every activity is idempotent (safe to retry). May import rules/, store/ and workflows.types.
"""
