"""S3 behaviour the emulator adds to moto's (see bucket_policy.py)."""
