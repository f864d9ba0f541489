"""Dynamic batching example: calls that pile up run as one batch.

    build/gild serve examples/batch.py --listen tcp://127.0.0.1:7700 --workers 1
    build/gildctl call tcp://127.0.0.1:7700 embed '"hello"'
"""
import gild


@gild.function(batch=16, batch_wait_ms=5)
def embed(texts):
    """Gets a list of up to 16 texts (one per call) and returns one result
    per text, in order: here, [length, number of vowels]."""
    return [[len(t), sum(c in "aeiou" for c in t)] for t in texts]
