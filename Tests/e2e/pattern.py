"""The deterministic byte pattern both peers and tests agree on."""
import hashlib
import random

BLOCK = 1 << 20


def block():
    return random.Random(20261121).randbytes(BLOCK)


def sha256_of(size):
    h = hashlib.sha256()
    b = block()
    left = size
    while left:
        n = min(left, len(b))
        h.update(b[:n])
        left -= n
    return h.hexdigest()
