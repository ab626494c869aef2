"""berth's runtime agent: containerd-shim + runc role.

Kept empty on purpose: the shim and zygote modules import this package, and they must stay
stdlib-only and small (every shim is a fork of the zygote).
"""
